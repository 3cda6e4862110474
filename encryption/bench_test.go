package encryption

import (
	"fmt"
	"testing"
)

// BenchmarkCodec reports codec throughput (MB/s of plaintext) for a slice of
// 100 short records, the default slice: compress, encrypt, both, and back.
func BenchmarkCodec(b *testing.B) {
	kr, _ := keyring(b, 1)
	var plain []byte
	for i := range 100 {
		plain = fmt.Appendf(plain, "\x2crec%07d-the quick brown fox, 4111 1111 1111 %04d;", i, i)
	}
	for _, mode := range []struct {
		name              string
		compress, encrypt bool
	}{{"compress", true, false}, {"encrypt", false, true}, {"both", true, true}} {
		c, err := NewCodec("6548f0c2a1b2c3d4e5f60718", kr, mode.compress, mode.encrypt)
		if err != nil {
			b.Fatal(err)
		}
		sealed, err := c.Seal(plain, "input", "1")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(mode.name+"/seal", func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			for b.Loop() {
				if _, err := c.Seal(plain, "input", "1"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mode.name+"/open", func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			for b.Loop() {
				if _, err := c.Open(sealed, "input", "1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
