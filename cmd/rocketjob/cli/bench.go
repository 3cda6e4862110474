package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/rocketjob-go/rocketjob/internal/bench"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "run the batch benchmark: rocketjob against the raw-driver baseline on the same database",
		UsageText: usageText("rocketjob bench [--n N] [--workers W] [--slice-size S] [--no-sealed] [--trace] [--uri URI] [--river-dsn DSN]",
			"rocketjob bench                    # 1,000,000 lines on a temporary embedded database",
			"rocketjob bench --n 100000 --trace # fewer lines, with every database call counted per phase",
			"rocketjob bench --n 100000 --river-dsn postgres://postgres@127.0.0.1:54329/riverbench # River as a peer"),
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "n", Value: bench.DefaultN, Usage: "`N` lines of the batch workload"},
			&cli.IntFlag{Name: "workers", Value: bench.DefaultWorkers, Usage: "`W` server workers (and baseline goroutines)"},
			&cli.IntFlag{Name: "slice-size", Value: bench.DefaultSliceSize, Usage: "`S` records per slice"},
			&cli.BoolFlag{Name: "no-sealed", Usage: "skip the encrypted+compressed run"},
			&cli.StringFlag{Name: "river-dsn", Usage: "also run River (one job per record) on the PostgreSQL `DSN` (postgres://...); see scripts/bench-peers.sh"},
			&cli.BoolFlag{Name: "trace", Usage: "count and time every database call per phase (adds latency to both sides)"},
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c, 0, 0, "no arguments"); err != nil {
				return err
			}
			rep, err := bench.Run(c.Context, bench.Config{
				N:         c.Int("n"),
				Workers:   c.Int("workers"),
				SliceSize: c.Int("slice-size"),
				URI:       c.String("uri"),
				Sealed:    !c.Bool("no-sealed"),
				Trace:     c.Bool("trace"),
				RiverDSN:  c.String("river-dsn"),
				Logf: func(format string, a ...any) {
					fmt.Fprintf(c.App.ErrWriter, format+"\n", a...)
				},
			})
			if err != nil {
				return err
			}
			fmt.Fprint(out(c), rep.String())
			return nil
		},
	}
}
