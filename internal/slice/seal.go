package slice

import (
	"strconv"
	"strings"

	"github.com/rocketjob-go/rocketjob/encryption"
)

// Kind is what a sealed body holds. It is bound into the encryption's
// additional data (job | kind | slot), and Input, Output and Failed are also
// the names of the job's slice collections.
type Kind string

// Kinds of sealed data.
const (
	// Input is an uploaded slice of records.
	Input Kind = "input"
	// Output is the output records of one slice.
	Output Kind = "output"
	// Failed is the failed records of one slice.
	Failed Kind = "failed"
	// Header is a CSV job's header row (slot 0).
	Header Kind = "header"
	// Fix is an operator's corrected failed record (slot: the record's
	// number), applied when the job is retried.
	Fix Kind = "fix"
)

// Category is the kind of one output category's records: "category:" and
// its name, so that a category's slice opens only as that category.
func Category(name string) Kind { return Kind("category:" + name) }

// what names kind's records in messages.
func (k Kind) what() string {
	if k == Failed {
		return "failed records"
	}
	if name, ok := strings.CutPrefix(string(k), "category:"); ok {
		return "output " + name
	}
	return string(k)
}

// slot is slice num's slot id in the encryption's additional data.
func slot(num int64) string { return strconv.FormatInt(num, 10) }

// Seal compresses and/or encrypts the body of slice num (0 for the header)
// as codec says, bound to kind and num. A codec that changes nothing
// returns plain itself.
func Seal(codec *encryption.Codec, kind Kind, num int64, plain []byte) ([]byte, error) {
	return codec.Seal(plain, string(kind), slot(num))
}

// Open reverses Seal for the same kind and num. A wrong or missing key, or a
// tampered, truncated or moved envelope, is an error (encryption.ErrNoKey or
// encryption.ErrCorrupt), never garbage.
func Open(codec *encryption.Codec, kind Kind, num int64, sealed []byte) ([]byte, error) {
	return codec.Open(sealed, string(kind), slot(num))
}

// Rewrap opens a sealed body and seals it again under the keyring's current
// key (key rotation).
func Rewrap(codec *encryption.Codec, kind Kind, num int64, sealed []byte) ([]byte, error) {
	return codec.Rewrap(sealed, string(kind), slot(num))
}
