package sliced_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/rocketjob-go/rocketjob/sliced"
)

// Order is a typed row: its tags name the columns it reads and writes.
type Order struct {
	ID     string    `rocketjob:"id"`
	Amount float64   `rocketjob:"amount"`
	Paid   bool      `rocketjob:"paid"`
	Day    time.Time `rocketjob:"day,format=2006-01-02"`
	Note   *string   `rocketjob:"note,optional"`
}

// Rows of a partner file decode into a struct by header name, whatever the
// column order and case; a field that does not convert names its column.
func Example_typedRows() {
	header := []string{"Day", " ID ", "amount", "paid"}
	dec, err := sliced.NewRowDecoder[Order](header)
	if err != nil {
		fmt.Println(err)
		return
	}
	o, err := dec.Decode([]string{"2026-03-01", "A-1", " 12.50", "yes"})
	fmt.Println(o.ID, o.Amount, o.Paid, o.Day.Format("Jan 2"), o.Note == nil, err)

	_, err = dec.Decode([]string{"2026-03-01", "A-2", "12x", "no"})
	var fe *sliced.FieldError
	fmt.Println(errors.As(err, &fe), fe.Column, err)

	enc, _ := sliced.NewRowEncoder[Order]()
	row, _ := enc.Encode(o)
	fmt.Println(enc.Header(), row)

	_, err = sliced.NewRowDecoder[Order]([]string{"id", "amount"})
	fmt.Println(err)
	// Output:
	// A-1 12.5 true Mar 1 true <nil>
	// true amount column "amount": "12x" is not a number
	// [id amount paid day note] [A-1 12.5 true 2026-03-01 ]
	// missing required columns "paid", "day"
}
