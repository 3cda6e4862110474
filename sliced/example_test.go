package sliced_test

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rocketjob-go/rocketjob/sliced"
)

// Reading a CSV file: the header is kept apart, each row is a record.
func ExampleNewReader() {
	r := sliced.NewReader(strings.NewReader("id,name\r\n1,\"Smith, J\"\r\n2,Ann\r\n"), sliced.CSV)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		fields, _ := sliced.DecodeFields(rec)
		fmt.Printf("line %d: %q\n", r.Line(), fields)
	}
	fmt.Printf("header: %q, line ending: %q\n", r.Header(), r.LineEnding())
	// Output:
	// line 2: ["1" "Smith, J"]
	// line 3: ["2" "Ann"]
	// header: ["id" "name"], line ending: "\r\n"
}

func ExampleReader_lines() {
	r := sliced.NewReader(strings.NewReader("first\n\nthird"), sliced.Lines)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		fmt.Printf("%d %q\n", r.Line(), rec)
	}
	fmt.Println("final newline:", r.FinalNewline())
	// Output:
	// 1 "first"
	// 2 ""
	// 3 "third"
	// final newline: false
}

// A download writes records back in the shape they were uploaded: a CSV file
// gets its header back, fields quoted where they need it.
func ExampleNewWriter() {
	w := sliced.NewWriter(os.Stdout, sliced.WriterOptions{Format: sliced.CSV, Header: []string{"id", "name"}, LineEnding: "\n", FinalNewline: true})
	_ = w.Write(sliced.EncodeFields(nil, []string{"1", "Smith, J"}))
	_ = w.Write(sliced.EncodeFields(nil, []string{"2", "Ann"}))
	_ = w.Close()
	// Output:
	// id,name
	// 1,"Smith, J"
	// 2,Ann
}
