// Package pgp reads and writes OpenPGP-encrypted files, as partner feeds
// in finance often arrive: a decrypting reader to put in front of
// sliced.Upload and an encrypting writer to put behind sliced.Download.
// It lives apart so that only programs that use it link its dependency
// (github.com/ProtonMail/go-crypto).
//
// Keys come from files, armored or binary, each holding one key or more:
// private keys to decrypt input (protected ones opened with a passphrase),
// public keys to encrypt output to. A message is recognised by its file
// name (.gpg, .pgp, .asc) or, when keys are given, by its first bytes (an
// armor header, or the packet that opens an encrypted message).
//
// Decryption streams: memory stays flat. The integrity check of the
// message can only be made at its end, so a tampered or truncated file
// fails the read of its last bytes; an upload fed by it then fails and
// drops what it stored, as for any input error.
package pgp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"

	"github.com/rocketjob-go/rocketjob/sliced"
)

// Errors about keys and messages. Each comes wrapped with the file it is
// about, in one line.
var (
	// ErrNoKey: the input is encrypted and no private key was given.
	ErrNoKey = errors.New("it is PGP-encrypted and no private key was given")
	// ErrWrongKey: none of the private keys given can open the message.
	ErrWrongKey = errors.New("none of the private keys given can decrypt it")
	// ErrNotEncrypted: a private key was given for input that is not an
	// OpenPGP message.
	ErrNotEncrypted = errors.New("a PGP key was given but it is not PGP-encrypted")
	// ErrPassphrase: a private key is protected and the passphrase is
	// missing or wrong.
	ErrPassphrase = errors.New("the private key is protected by a passphrase: missing or wrong")
)

// Keys is a set of OpenPGP keys read from files.
type Keys struct {
	list  openpgp.EntityList
	files string
}

// ReadKeys reads the keys of the files (armored or binary). Protected
// private keys are opened with passphrase; a protected key without the
// right passphrase is an error wrapping ErrPassphrase.
func ReadKeys(passphrase []byte, files ...string) (*Keys, error) {
	k := &Keys{files: strings.Join(files, ", ")}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("PGP key %w", err)
		}
		list, err := parseKeys(data)
		if err != nil {
			return nil, fmt.Errorf("PGP key file %s: %w", f, err)
		}
		for _, e := range list {
			if err := openEntity(e, passphrase); err != nil {
				return nil, fmt.Errorf("PGP key file %s: %w", f, err)
			}
		}
		k.list = append(k.list, list...)
	}
	if len(k.list) == 0 {
		return nil, errors.New("no PGP key file given")
	}
	return k, nil
}

// parseKeys reads armored or binary keys.
func parseKeys(data []byte) (openpgp.EntityList, error) {
	trimmed := bytes.TrimSpace(data)
	var list openpgp.EntityList
	var err error
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN PGP")) {
		list, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(trimmed))
	} else {
		list, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("not an OpenPGP key: %v", err)
	}
	if len(list) == 0 {
		return nil, errors.New("holds no OpenPGP key")
	}
	return list, nil
}

// openEntity decrypts the protected private keys of e with passphrase.
func openEntity(e *openpgp.Entity, passphrase []byte) error {
	protected := e.PrivateKey != nil && e.PrivateKey.Encrypted
	for _, s := range e.Subkeys {
		protected = protected || (s.PrivateKey != nil && s.PrivateKey.Encrypted)
	}
	if !protected {
		return nil
	}
	if len(passphrase) == 0 {
		return ErrPassphrase
	}
	if err := e.DecryptPrivateKeys(passphrase); err != nil {
		return ErrPassphrase
	}
	return nil
}

// exts are the file name endings of OpenPGP files.
var exts = []string{".gpg", ".pgp", ".asc"}

// HasExt reports whether name ends in .gpg, .pgp or .asc.
func HasExt(name string) bool {
	for _, e := range exts {
		if strings.EqualFold(path.Ext(name), e) {
			return true
		}
	}
	return false
}

// TrimExt returns name without its .gpg, .pgp or .asc ending (the name of
// the file inside, whose own ending says its format and compression).
func TrimExt(name string) string {
	if HasExt(name) {
		return name[:len(name)-len(path.Ext(name))]
	}
	return name
}

// armorHeader starts an armored message.
var armorHeader = []byte("-----BEGIN PGP MESSAGE-----")

// looksEncrypted reports whether b, the first bytes of an input, start an
// OpenPGP message: an armor header, or a packet that opens an encrypted
// message (a public-key or a passphrase encrypted session key, in the old
// packet format, or the public-key one in the new format; the new-format
// passphrase packet's first byte is also "Ã" in UTF-8, so it is only
// recognised by the file name).
func looksEncrypted(b []byte) bool {
	if bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), armorHeader) {
		return true
	}
	if len(b) == 0 {
		return false
	}
	switch c := b[0]; {
	case c >= 0x84 && c <= 0x87, c >= 0x8c && c <= 0x8f, c == 0xc1:
		return true
	}
	return false
}

// Detect reports whether an input named name whose first bytes are head
// (64 are enough) is an OpenPGP message, as OpenInput decides it.
func Detect(head []byte, name string) bool { return HasExt(name) || looksEncrypted(head) }

// OpenInput returns the plaintext of r when it is an OpenPGP message
// (recognised by its name, or by its first bytes when keys are given: data
// that merely starts with such bytes is not refused for want of a key),
// decrypted with keys, and the
// name of the file inside (name without .gpg/.pgp/.asc); other input comes
// back unchanged with keys nil, and is an error wrapping ErrNotEncrypted
// with keys. An encrypted input without keys is an error wrapping ErrNoKey,
// one that none of the keys opens ErrWrongKey; errors of the content, at
// the start or later while reading, are *sliced.InputError values. Nothing
// of r is read past what the decision needs until the result is read.
func OpenInput(r io.Reader, name string, keys *Keys) (io.Reader, string, error) {
	return open(r, name, keys, true)
}

// OpenIfEncrypted is OpenInput for a service whose keys serve every input
// it is given (the uploads of a web UI), not one input known to be
// encrypted: with keys, input that is not an OpenPGP message comes back
// unchanged instead of being an error wrapping ErrNotEncrypted. The other
// answers are OpenInput's.
func OpenIfEncrypted(r io.Reader, name string, keys *Keys) (io.Reader, string, error) {
	return open(r, name, keys, false)
}

// open is OpenInput; plainWithKeys says whether plain input with keys is
// an error (ErrNotEncrypted).
func open(r io.Reader, name string, keys *Keys, plainWithKeys bool) (io.Reader, string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(64)
	if err != nil && err != io.EOF {
		return nil, name, err
	}
	if !HasExt(name) && (keys == nil || !looksEncrypted(head)) {
		if keys != nil && plainWithKeys {
			return nil, name, fmt.Errorf("%s: %w", name, ErrNotEncrypted)
		}
		return br, name, nil
	}
	if keys == nil {
		return nil, name, fmt.Errorf("%s: %w", name, ErrNoKey)
	}
	plain, err := keys.Decrypt(br)
	if err != nil {
		return nil, name, fmt.Errorf("%s: %w", name, err)
	}
	return plain, TrimExt(name), nil
}

// Decrypt returns the plaintext of the OpenPGP message (armored or binary)
// read from r. None of the keys opening it is an error wrapping
// ErrWrongKey; a message that is not one, or is not encrypted, an
// *sliced.InputError.
func (k *Keys) Decrypt(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(len(armorHeader) + 64)
	var body io.Reader = br
	if bytes.HasPrefix(bytes.TrimLeft(head, " \t\r\n"), armorHeader) {
		block, err := armor.Decode(br)
		if err != nil {
			return nil, &sliced.InputError{Offset: -1, Err: fmt.Errorf("not a readable PGP armored message: %v", err)}
		}
		body = block.Body
	}
	md, err := openpgp.ReadMessage(body, k.list, nil, nil)
	switch {
	case errors.Is(err, pgperrors.ErrKeyIncorrect):
		return nil, fmt.Errorf("%w (the keys of %s)", ErrWrongKey, k.files)
	case err != nil:
		return nil, &sliced.InputError{Offset: -1, Err: fmt.Errorf("not a readable PGP message: %v", err)}
	case !md.IsEncrypted:
		return nil, &sliced.InputError{Offset: -1, Err: errors.New("the PGP message is not encrypted")}
	}
	return &plainReader{md: md}, nil
}

// plainReader reads a decrypted message, turning its errors (a failed
// integrity check, a truncated message) into *sliced.InputError values.
type plainReader struct {
	md  *openpgp.MessageDetails
	n   int64
	err error
}

func (p *plainReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.md.UnverifiedBody.Read(b)
	p.n += int64(n)
	switch {
	case err == io.EOF && p.md.SignatureError != nil && p.md.SignedBy != nil:
		// Signed by one of our keys, and the signature does not match.
		err = &sliced.InputError{Offset: -1, Err: fmt.Errorf("PGP signature check failed: %v", p.md.SignatureError)}
	case err != nil && err != io.EOF:
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = &sliced.InputError{Offset: -1, Err: fmt.Errorf("PGP message ends early after %d plaintext bytes (truncated input?)", p.n)}
		} else {
			err = &sliced.InputError{Offset: -1, Err: fmt.Errorf("PGP message after %d plaintext bytes: %v", p.n, err)}
		}
	}
	p.err = err
	return n, err
}

// Encrypt returns a writer whose bytes are encrypted to every key in k
// (their public parts) and written to w, armored when armored is set.
// Close finishes the message; it does not close w.
func (k *Keys) Encrypt(w io.Writer, armored bool) (io.WriteCloser, error) {
	out := w
	var arm io.WriteCloser
	if armored {
		var err error
		if arm, err = armor.Encode(w, "PGP MESSAGE", nil); err != nil {
			return nil, err
		}
		out = arm
	}
	plain, err := openpgp.Encrypt(out, k.list, nil, &openpgp.FileHints{IsBinary: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("PGP encryption to the keys of %s: %v", k.files, err)
	}
	return &encWriter{plain: plain, arm: arm}, nil
}

// encWriter closes the message, then the armor.
type encWriter struct {
	plain io.WriteCloser
	arm   io.WriteCloser
}

func (e *encWriter) Write(b []byte) (int, error) { return e.plain.Write(b) }

func (e *encWriter) Close() error {
	err := e.plain.Close()
	if e.arm != nil {
		err = errors.Join(err, e.arm.Close())
	}
	return err
}
