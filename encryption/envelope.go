package encryption

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Envelope format.
const (
	version        = 1
	flagCompressed = 1
	flagEncrypted  = 2
	nonceSize      = 12
)

// MaxDecodedSize bounds what one envelope may decompress to: a slice larger
// than this is refused as a decompression bomb.
const MaxDecodedSize = 64 << 20

// ErrCorrupt is wrapped by every error about an envelope that is malformed,
// tampered with, or sealed for another job or slot.
var ErrCorrupt = errors.New("corrupt or tampered slice")

// Codec seals and opens the slices of one job. It is safe for concurrent use.
type Codec struct {
	jobID    string
	keyring  *Keyring
	compress bool
	encrypt  bool

	mu    sync.Mutex
	aeads map[string]cipher.AEAD
}

// NewCodec returns the codec for a job with the given options. Encryption
// needs a keyring (ErrNoKeyring otherwise); opening needs the keys the
// slices were sealed with.
func NewCodec(jobID string, keyring *Keyring, compress, encrypt bool) (*Codec, error) {
	if encrypt && keyring == nil {
		return nil, ErrNoKeyring
	}
	return &Codec{jobID: jobID, keyring: keyring, compress: compress, encrypt: encrypt, aeads: map[string]cipher.AEAD{}}, nil
}

// Active reports whether the codec changes the bytes at all.
func (c *Codec) Active() bool { return c != nil && (c.compress || c.encrypt) }

// aad binds a sealed slice to its job, collection and slot.
func (c *Codec) aad(collection, slot string) []byte {
	return []byte(c.jobID + "|" + collection + "|" + slot)
}

func (c *Codec) aead(keyID string) (cipher.AEAD, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.aeads[keyID]; ok {
		return a, nil
	}
	if !c.keyring.Has(keyID) {
		return nil, fmt.Errorf("%w: %q (the job's slices were written with it)", ErrNoKey, keyID)
	}
	sub, err := hkdf.Key(sha256.New, c.keyring.keys[keyID], []byte(c.jobID), "rocketjob slices v1", KeySize)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	c.aeads[keyID] = a
	return a, nil
}

// Seal compresses and/or encrypts plain for the slot (collection, slot id)
// under the current key. A codec that is not Active returns plain unchanged.
func (c *Codec) Seal(plain []byte, collection, slot string) ([]byte, error) {
	if !c.Active() {
		return plain, nil
	}
	var flags byte
	body := plain
	if c.compress {
		body = encoder().EncodeAll(plain, make([]byte, 0, len(plain)/3+16))
		flags |= flagCompressed
	}
	if !c.encrypt {
		return append([]byte{version, flags}, body...), nil
	}
	flags |= flagEncrypted
	keyID := c.keyring.Current()
	a, err := c.aead(keyID)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 3+len(keyID)+nonceSize+len(body)+a.Overhead())
	out = append(out, version, flags, byte(len(keyID)))
	out = append(out, keyID...)
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return a.Seal(out, nonce, body, c.aad(collection, slot)), nil
}

// Open reverses Seal for the same slot. A wrong or missing key, a tampered,
// truncated or moved envelope is an error (ErrNoKey or ErrCorrupt), never a
// panic or garbage.
func (c *Codec) Open(sealed []byte, collection, slot string) ([]byte, error) {
	if !c.Active() {
		return sealed, nil
	}
	if len(sealed) < 2 || sealed[0] != version {
		return nil, fmt.Errorf("%w: unknown envelope version", ErrCorrupt)
	}
	flags, body := sealed[1], sealed[2:]
	if flags&^(flagCompressed|flagEncrypted) != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, flags)
	}
	if c.encrypt && flags&flagEncrypted == 0 {
		return nil, fmt.Errorf("%w: slice is not encrypted but the job is", ErrCorrupt)
	}
	if flags&flagEncrypted != 0 {
		if len(body) < 1 || len(body) < 1+int(body[0])+nonceSize {
			return nil, fmt.Errorf("%w: truncated envelope", ErrCorrupt)
		}
		idEnd := 1 + int(body[0]) // as int: 1+byte wraps at 255
		keyID := string(body[1:idEnd])
		body = body[idEnd:]
		a, err := c.aead(keyID)
		if err != nil {
			return nil, err
		}
		nonce, ct := body[:nonceSize], body[nonceSize:]
		if len(ct) < a.Overhead() {
			return nil, fmt.Errorf("%w: truncated envelope", ErrCorrupt)
		}
		body, err = a.Open(nil, nonce, ct, c.aad(collection, slot))
		if err != nil {
			return nil, fmt.Errorf("%w: authentication failed (wrong key, modified bytes, or a slice moved from another job or slot)", ErrCorrupt)
		}
	}
	if flags&flagCompressed != 0 {
		return decompress(body)
	}
	return body, nil
}

// Rewrap opens a sealed slice and seals it again under the current key (key
// rotation of a job's stored slices).
func (c *Codec) Rewrap(sealed []byte, collection, slot string) ([]byte, error) {
	plain, err := c.Open(sealed, collection, slot)
	if err != nil {
		return nil, err
	}
	return c.Seal(plain, collection, slot)
}

// KeyID returns the id of the key a sealed slice was encrypted with, or "".
func KeyID(sealed []byte) string {
	if len(sealed) < 3 || sealed[0] != version || sealed[1]&flagEncrypted == 0 || len(sealed) < 3+int(sealed[2]) {
		return ""
	}
	return string(sealed[3 : 3+int(sealed[2])])
}

var (
	encOnce sync.Once
	enc     *zstd.Encoder
	decOnce sync.Once
	dec     *zstd.Decoder
)

func encoder() *zstd.Encoder {
	encOnce.Do(func() {
		enc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	})
	return enc
}

func decoder() *zstd.Decoder {
	decOnce.Do(func() {
		dec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxDecodedSize), zstd.WithDecoderMaxWindow(8<<20))
	})
	return dec
}

func decompress(b []byte) ([]byte, error) {
	out, err := decoder().DecodeAll(b, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: decompressing: %v", ErrCorrupt, err)
	}
	if len(out) > MaxDecodedSize {
		return nil, fmt.Errorf("%w: decompresses to more than %d bytes", ErrCorrupt, MaxDecodedSize)
	}
	return out, nil
}
