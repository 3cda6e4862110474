package encryption_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobtest"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// An encrypted job type stores its slices (input, output, failed records)
// AES-256-GCM encrypted with the keyring's current key. Keys rotate: a new
// key goes first in the keyring and writes from then on, the old one stays
// to read the jobs it wrote. A process without a job's key cannot read it.
func Example_encryptedJob() {
	ctx := context.Background()
	reg := rocketjob.NewRegistry()
	err := sliced.RegisterLines(reg, "mask", func(ctx context.Context, card string) (string, error) {
		return strings.Repeat("*", len(card)-4) + card[len(card)-4:], nil
	}, &sliced.Options{Encrypt: true})
	if err != nil {
		fmt.Println(err)
		return
	}

	// `rocketjob keys generate` prints such a line; ROCKETJOB_KEYS or a key
	// file holds it.
	oldKey, _ := encryption.GenerateKey()
	keyring, err := encryption.ParseKeyring(oldKey)
	if err != nil {
		fmt.Println(err)
		return
	}
	// A client with that keyring on fresh databases of the test's embedded
	// database; RoundTrip uploads, runs a server and downloads.
	db, err := rocketjobtest.Open(ctx, reg, &rocketjobtest.Options{Keyring: keyring})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close(ctx)
	res, err := rocketjobtest.RoundTrip(ctx, db.Client, "mask", strings.NewReader("4111111111111111\n5500005555555559\n"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("encrypted:", res.Job.Encrypt, "with the current key:", res.Job.KeyID == keyring.Current())
	fmt.Println(strings.Join(res.Output, "\n"))

	// Rotation: a new key writes from now on; the old one still reads.
	newKey, _ := encryption.GenerateKey()
	rotated, _ := encryption.ParseKeyring(newKey + "," + oldKey)
	fmt.Println("rotated keyring reads it:", download(ctx, db, rotated, res.Job.ID.Hex()) == nil)

	// Without the old key the job cannot be read: a clear error, never garbage.
	newOnly, _ := encryption.ParseKeyring(newKey)
	err = download(ctx, db, newOnly, res.Job.ID.Hex())
	fmt.Println("without its key:", errors.Is(err, encryption.ErrNoKey))
	// Output:
	// encrypted: true with the current key: true
	// ************1111
	// ************5559
	// rotated keyring reads it: true
	// without its key: true
}

// download downloads a job's output with a client holding keyring.
func download(ctx context.Context, db *rocketjobtest.DB, keyring *encryption.Keyring, id string) error {
	cfg := db.Config()
	cfg.Keyring = keyring
	client, err := rocketjob.NewClient(ctx, cfg)
	if err != nil {
		return err
	}
	defer client.Close(ctx)
	_, err = sliced.Download(ctx, client, id, io.Discard)
	return err
}
