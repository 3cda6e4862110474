package slice

import (
	"bytes"
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/scope"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// triage routes integers to even/odd (twice for "2x"), drops empty records,
// fails anything else, and panics on "boom" after emitting. It counts with
// the scope and records the record numbers it saw.
func triage(seen *[]int64) func(ctx context.Context, rec []byte, emit func(string, []byte)) error {
	return func(ctx context.Context, rec []byte, emit func(string, []byte)) error {
		sc := scope.From(ctx)
		*seen = append(*seen, sc.Record)
		s := string(rec)
		switch {
		case s == "":
			sc.Inc("empty", 1)
			return nil
		case s == "boom":
			emit("even", []byte("leaked"))
			panic("boom")
		case s == "bad-cat":
			emit("odd", []byte("leaked"))
			emit("nope", []byte("x"))
			return nil
		}
		twice := strings.HasSuffix(s, "x")
		n, err := strconv.Atoi(strings.TrimSuffix(s, "x"))
		if err != nil {
			emit("odd", []byte("leaked")) // taken back: the record fails
			return err
		}
		cat := "odd"
		if n%2 == 0 {
			cat = "even"
		}
		sc.Inc(cat, 1)
		emit(cat, rec)
		if twice {
			emit(cat, rec)
		}
		return nil
	}
}

func openCategory(t *testing.T, task Task, p Processed, name string) []string {
	t.Helper()
	for _, c := range p.Batch.Categories {
		if c.Name != name {
			continue
		}
		plain, err := Open(task.Codec, Category(name), task.Slice.Num, c.Records)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for rec, err := range Records(plain) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(rec))
		}
		if len(out) != c.Count {
			t.Fatalf("category %s: %d records, count %d", name, len(out), c.Count)
		}
		return out
	}
	return nil
}

func TestProcessCategories(t *testing.T) {
	for _, encrypt := range []bool{false, true} {
		t.Run("encrypt="+strconv.FormatBool(encrypt), func(t *testing.T) {
			c := codec(t, goldenJob, ring(t, "k:1"), false, encrypt)
			sealed, err := Seal(c, Input, 4, pack("1", "2", "", "x", "4x", "boom", "bad-cat", "7"))
			if err != nil {
				t.Fatal(err)
			}
			var seen []int64
			task := Task{Job: goldenJob, Codec: c, Slice: store.InputSlice{Num: 4, First: 31, Count: 8, Records: sealed},
				Collect: true, Outputs: triage(&seen), Categories: []string{"even", "odd"}}
			p, err := Process(context.Background(), task)
			if err != nil {
				t.Fatal(err)
			}
			if want := []int64{31, 32, 33, 34, 35, 36, 37, 38}; !reflect.DeepEqual(seen, want) {
				t.Errorf("record numbers %v, want %v", seen, want)
			}
			if p.Output != nil || p.OutputCount != 0 {
				t.Errorf("default output %q (%d) for a type with categories", p.Output, p.OutputCount)
			}
			if p.Batch == nil {
				t.Fatal("no batch result")
			}
			if even, odd := openCategory(t, task, p, "even"), openCategory(t, task, p, "odd"); !reflect.DeepEqual(even, []string{"2", "4x", "4x"}) || !reflect.DeepEqual(odd, []string{"1", "7"}) {
				t.Errorf("even %q, odd %q", even, odd)
			}
			if p.FailedCount != 3 || p.Batch.Dropped != 1 {
				t.Errorf("failed %d, dropped %d; want 3 and 1", p.FailedCount, p.Batch.Dropped)
			}
			if want := map[string]int64{"even": 2, "odd": 2, "empty": 1}; !reflect.DeepEqual(p.Batch.Statistics, want) {
				t.Errorf("statistics %v, want %v", p.Batch.Statistics, want)
			}
			plain, err := Open(c, Failed, 4, p.Failed)
			if err != nil {
				t.Fatal(err)
			}
			fs := collectFailures(t, plain)
			var nums []int64
			for _, f := range fs {
				nums = append(nums, f.Number)
			}
			if !reflect.DeepEqual(nums, []int64{34, 36, 37}) || !strings.Contains(fs[2].Message, `unknown output category "nope"`) {
				t.Errorf("failures %+v", fs)
			}
			if encrypt {
				for _, cat := range p.Batch.Categories {
					if bytes.Contains(cat.Records, []byte("4x")) {
						t.Errorf("category %s stored in plaintext", cat.Name)
					}
					// Bound to its category: it does not open as another.
					if _, err := Open(c, Category("x"+cat.Name), 4, cat.Records); err == nil {
						t.Errorf("category %s opens as another category", cat.Name)
					}
				}
			}
		})
	}
}

// TestProcessOutputsWithoutCategories: a type without categories may give a
// record no output (dropped) or one; two fail the record; the default
// output is the plain body format.
func TestProcessOutputsWithoutCategories(t *testing.T) {
	c := codec(t, goldenJob, ring(t, "k:1"), false, false)
	in := store.InputSlice{Num: 1, First: 1, Count: 4, Records: pack("a", "", "bb", "c")}
	fn := func(_ context.Context, rec []byte, emit func(string, []byte)) error {
		switch string(rec) {
		case "":
		case "bb":
			emit("", rec)
			emit("", rec)
		default:
			emit("", bytes.ToUpper(rec))
		}
		return nil
	}
	p, out, fs := processed(t, Task{Job: goldenJob, Codec: c, Slice: in, Collect: true, Outputs: fn})
	if !reflect.DeepEqual(out, []string{"A", "C"}) || p.OutputCount != 2 {
		t.Fatalf("output %q (%d)", out, p.OutputCount)
	}
	if len(fs) != 1 || fs[0].Number != 3 || !strings.Contains(fs[0].Message, "at most one output") {
		t.Fatalf("failures %+v", fs)
	}
	if p.Batch == nil || p.Batch.Dropped != 1 || p.Batch.Categories != nil {
		t.Fatalf("batch %+v", p.Batch)
	}
	if got := string(p.Output); got != string(pack("A", "C")) {
		t.Errorf("default output body %x, want the plain format", got)
	}
}

// TestProcessPlainTypeUnchanged: a type with a plain Fn and no statistics
// stores no batch result (its stored slice is exactly as before); one that
// counts stores only its statistics.
func TestProcessPlainTypeUnchanged(t *testing.T) {
	c := codec(t, goldenJob, ring(t, "k:1"), false, false)
	in := store.InputSlice{Num: 1, First: 1, Count: 2, Records: pack("3", "4")}
	p, out, _ := processed(t, Task{Job: goldenJob, Codec: c, Slice: in, Collect: true, Fn: square})
	if p.Batch != nil || !reflect.DeepEqual(out, []string{"9", "16"}) || string(p.Output) != string(pack("9", "16")) {
		t.Fatalf("batch %+v, output %q", p.Batch, out)
	}
	counting := func(ctx context.Context, rec []byte) ([]byte, error) {
		scope.From(ctx).Inc("n", 1)
		return square(ctx, rec)
	}
	p, _, _ = processed(t, Task{Job: goldenJob, Codec: c, Slice: in, Collect: true, Fn: counting})
	if p.Batch == nil || !reflect.DeepEqual(p.Batch.Statistics, map[string]int64{"n": 2}) || p.Batch.Categories != nil || p.Batch.Dropped != 0 {
		t.Fatalf("batch %+v", p.Batch)
	}
}

// TestCategoryKindIsPinned: a category's kind is bound into the sealed
// envelope's additional data, so its spelling is part of the stored format.
func TestCategoryKindIsPinned(t *testing.T) {
	if k := Category("even"); k != "category:even" || k.what() != "output even" {
		t.Fatalf("Category(even) = %q (%s)", k, k.what())
	}
	c := codec(t, goldenJob, goldenKeyring(t), false, true)
	sealed, err := Seal(c, Category("even"), 3, pack("2", "4"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []Kind{Output, Category("odd"), Kind("even")} {
		if _, err := Open(c, kind, 3, sealed); err == nil {
			t.Errorf("a category:even slice opened as %q", kind)
		}
	}
	if plain, err := Open(c, Category("even"), 3, sealed); err != nil || string(plain) != string(pack("2", "4")) {
		t.Errorf("open: %q, %v", plain, err)
	}
}
