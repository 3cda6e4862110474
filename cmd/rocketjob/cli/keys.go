package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/sliced"
)

func keysCommand(st *appState) *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "encryption keys: generate one, re-encrypt a job under the current key",
		UsageText: usageText("rocketjob keys generate | rotate-job ID",
			"export ROCKETJOB_KEYS=$(rocketjob keys generate)",
			"ROCKETJOB_KEYS=\"$NEW,$OLD\" rocketjob keys rotate-job 6548f0c2a1b2c3d4e5f60718"),
		Subcommands: []*cli.Command{
			{
				Name:  "generate",
				Usage: "print a new random key (ID:BASE64), usable on its own as $ROCKETJOB_KEYS",
				UsageText: usageText("rocketjob keys generate",
					"export ROCKETJOB_KEYS=$(rocketjob keys generate)",
					"ROCKETJOB_KEYS=\"$(rocketjob keys generate),$ROCKETJOB_KEYS\"   # rotate: the new key writes, the old ones still read"),
				Action: func(c *cli.Context) error {
					if _, err := args(c, 0, 0, "no arguments"); err != nil {
						return err
					}
					k, err := encryption.GenerateKey()
					if err != nil {
						return err
					}
					fmt.Fprintln(out(c), k)
					return nil
				},
			},
			{
				Name:      "rotate-job",
				Usage:     "re-encrypt a job's stored slices under the current (first) key, so older keys can be dropped",
				ArgsUsage: "ID",
				UsageText: usageText("rocketjob keys rotate-job ID",
					"ROCKETJOB_KEYS=\"$NEW,$OLD\" rocketjob keys rotate-job 6548f0c2a1b2c3d4e5f60718"),
				Action: func(c *cli.Context) error {
					a, err := args(c, 1, 1, "ID")
					if err != nil {
						return err
					}
					client, err := st.connect(c)
					if err != nil {
						return err
					}
					defer closeClient(client)
					n, err := sliced.Rekey(c.Context, client, a[0])
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.ErrWriter, "re-encrypted %d slices of job %s under key %s\n", n, a[0], client.Keyring().Current())
					return nil
				},
			},
		},
	}
}
