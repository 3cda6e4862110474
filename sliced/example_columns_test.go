package sliced_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
	"github.com/rocketjob-go/rocketjob/rocketjob"
	"github.com/rocketjob-go/rocketjob/rocketjobtest"
	"github.com/rocketjob-go/rocketjob/sliced"
)

// A CSV type declares the columns it needs; a partner's file without them
// is refused before anything is stored, naming what is wrong. Names match
// trimmed and case-insensitively.
func Example_columnChecks() {
	ctx := context.Background()
	reg := rocketjob.NewRegistry()
	err := sliced.RegisterCSV(reg, "payments", func(ctx context.Context, header, row []string) ([]string, error) {
		return row, nil
	}, &sliced.Options{Columns: &sliced.Columns{
		Required: []string{"id", "amount"},
		Allowed:  []string{"note"}, // and nothing else
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	db, err := rocketjobtest.Open(ctx, reg, &rocketjobtest.Options{URI: dbtest.URI()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close(ctx)

	_, err = sliced.Upload(ctx, db.Client, "payments", strings.NewReader("ID,Colour\n1,red\n"), nil)
	var ce *sliced.ColumnError
	if errors.As(err, &ce) {
		fmt.Println("refused:", err)
		fmt.Println("missing:", ce.Missing, "unknown:", ce.Unknown)
	}

	job, err := sliced.Upload(ctx, db.Client, "payments", strings.NewReader(" ID ,Amount,note\n1,9.50,\n"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("accepted:", job.RecordCount, "record")
	// Output:
	// refused: line 1: missing required column "amount"; unknown column "Colour"
	// missing: [amount] unknown: [Colour]
	// accepted: 1 record
}
