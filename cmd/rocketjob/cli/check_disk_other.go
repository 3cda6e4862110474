//go:build !unix

package cli

import "errors"

func diskFree(string) (free, total uint64, err error) {
	return 0, 0, errors.New("free disk is not measured on this system")
}
