package rocketjobweb

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/rocketjob-go/rocketjob/sliced"
	"github.com/rocketjob-go/rocketjob/sliced/pgp"
)

// PGP-encrypted files over HTTP (#17): uploads decrypted with
// Options.PGPKeys, output downloads encrypted to Options.PGPRecipients.
// The keys and their passphrase never reach an answer, a log line or the
// database; the answers name the upload's file, not the key files.

// pgpUpload returns the plaintext of an uploaded file that is an OpenPGP
// message (named .gpg, .pgp or .asc, or, when the handler has keys,
// opening like one), with opts.Name then the name inside, which says the
// format and the compression. Other files come back as they are. A
// message the handler cannot open (no keys, none of its keys, not a
// readable message) is a 400 of one line, before anything is stored.
func (h *Handler) pgpUpload(in io.Reader, opts *sliced.UploadOptions) (io.Reader, error) {
	keys := h.cfg.PGPKeys
	if keys == nil && !pgp.HasExt(opts.Name) {
		return in, nil
	}
	out, inner, err := pgp.OpenIfEncrypted(in, opts.Name, keys)
	file := truncate(opts.Name, 100)
	var ie *sliced.InputError
	switch {
	case errors.Is(err, pgp.ErrNoKey):
		return nil, apiErr(http.StatusBadRequest, "pgp_no_key",
			file+": the file is PGP-encrypted and this server has no PGP private key to decrypt it (start it with --pgp-key KEYFILE); nothing was stored")
	case errors.Is(err, pgp.ErrWrongKey):
		return nil, apiErr(http.StatusBadRequest, "pgp_wrong_key",
			file+": none of this server's PGP private keys can decrypt it (encrypted to another key?); nothing was stored")
	case errors.As(err, &ie):
		return nil, apiErr(http.StatusBadRequest, "bad_input", file+": "+oneLine(ie.Error())+"; nothing was stored")
	case err != nil:
		return nil, err // reading the request failed
	}
	opts.Name = inner
	return out, nil
}

// oneLine puts a message on one line.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// pgpRecipients reads the pgp query parameter of an output download: nil
// without it, the handler's recipients with it. Asking for encryption
// from a handler without recipients is a 400.
func (h *Handler) pgpRecipients(r *http.Request) (*pgp.Keys, error) {
	v := r.URL.Query().Get("pgp")
	if v == "" {
		return nil, nil
	}
	on, err := parseBool(v)
	if err != nil {
		return nil, badParam("pgp: %v", err)
	}
	if !on {
		return nil, nil
	}
	if h.cfg.PGPRecipients == nil {
		return nil, apiErr(http.StatusBadRequest, "pgp_no_recipient",
			"this server has no PGP public keys to encrypt downloads to (start it with --pgp-recipient KEYFILE)")
	}
	return h.cfg.PGPRecipients, nil
}

// streamPGP streams a download encrypted to keys as FILENAME.gpg
// (application/pgp-encrypted); with ?gzip=1 the file is gzip-compressed
// before it is encrypted (FILENAME.gz.gpg). As with stream, an error
// before the first byte of the file is a proper error answer: the
// message starts with the file's first byte.
func (h *Handler) streamPGP(w http.ResponseWriter, r *http.Request, filename string, keys *pgp.Keys, produce func(context.Context, io.Writer) error) {
	zipped := fileGzip(r)
	if zipped {
		filename += ".gz"
	}
	h.streamFile(w, r, filename+".gpg", "application/pgp-encrypted", false, func(ctx context.Context, out io.Writer) error {
		enc := &lazyEncrypter{keys: keys, w: out}
		var dst io.Writer = enc
		var zw *gzip.Writer
		if zipped {
			zw = gzip.NewWriter(enc)
			dst = zw
		}
		if err := produce(ctx, dst); err != nil {
			return err
		}
		if zw != nil {
			if err := zw.Close(); err != nil {
				return err
			}
		}
		return enc.Close()
	})
}

// lazyEncrypter starts the encrypted message with the first byte written
// to it (or at Close, for an empty file).
type lazyEncrypter struct {
	keys *pgp.Keys
	w    io.Writer
	enc  io.WriteCloser
}

func (l *lazyEncrypter) start() error {
	if l.enc != nil {
		return nil
	}
	enc, err := l.keys.Encrypt(l.w, false)
	if err != nil {
		return err
	}
	l.enc = enc
	return nil
}

func (l *lazyEncrypter) Write(p []byte) (int, error) {
	if err := l.start(); err != nil {
		return 0, err
	}
	return l.enc.Write(p)
}

// Close ends the message; it does not close the writer underneath.
func (l *lazyEncrypter) Close() error {
	if err := l.start(); err != nil {
		return err
	}
	return l.enc.Close()
}
