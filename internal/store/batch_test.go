package store_test

import (
	"context"
	"reflect"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/internal/store"
)

// TestBatchResultsCountOnce: a batch type's category outputs, statistics
// and dropped records are stored with the slice and count once, even when
// a slice completes twice (a second attempt after a requeue), on both
// strategies.
func TestBatchResultsCountOnce(t *testing.T) {
	strategies(t, func(t *testing.T, s store.SliceStore) {
		ctx := context.Background()
		job := bson.NewObjectID()
		upload(t, s, job, 3)
		f := s.NewFeeder(job, "srv", 3)
		claims := claimAll(t, f)
		if len(claims) != 3 {
			t.Fatalf("claimed %d slices", len(claims))
		}
		result := func(num int64) store.Result {
			return store.Result{Batch: &store.BatchResult{
				Categories: []store.CategoryOutput{
					{Name: "even", Count: 2, Records: []byte("e" + string(rune('0'+num)))},
					{Name: "odd", Count: 1, Records: []byte("o" + string(rune('0'+num)))},
				},
				Statistics: map[string]int64{"even": 2, "odd": 1},
				Dropped:    num,
			}}
		}
		for _, c := range claims[:2] {
			if won, err := s.Complete(ctx, job, c, result(c.Num)); err != nil || !won {
				t.Fatalf("complete slice %d: %v, %v", c.Num, won, err)
			}
		}
		// The first slice completes again (a stale attempt): it must not count twice.
		won, err := s.Complete(ctx, job, claims[0], result(claims[0].Num))
		if err != nil {
			t.Fatal(err)
		}
		_ = won // MongoDB replaces, FerretDB refuses: either way it counts once
		tot, err := s.Totals(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		want := store.Totals{Categories: map[string]int64{"even": 4, "odd": 2}, Statistics: map[string]int64{"even": 4, "odd": 2},
			Dropped: claims[0].Num + claims[1].Num}
		if !reflect.DeepEqual(tot, want) {
			t.Fatalf("totals %+v, want %+v", tot, want)
		}
		// The last slice: no batch result at all (a plain slice), nothing added.
		if _, err := s.Complete(ctx, job, claims[2], store.Result{Output: []byte("x"), OutputCount: 1}); err != nil {
			t.Fatal(err)
		}
		if tot, err = s.Totals(ctx, job); err != nil || !reflect.DeepEqual(tot, want) {
			t.Fatalf("totals %+v (%v), want %+v", tot, err, want)
		}
		var got []string
		err = s.StreamOutput(ctx, job, func(o store.OutputSlice) error {
			for _, c := range o.Categories {
				got = append(got, c.Name+":"+string(c.Records))
			}
			if len(o.Categories) == 0 {
				got = append(got, "plain:"+string(o.Records))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		n1, n2 := string(rune('0'+claims[0].Num)), string(rune('0'+claims[1].Num))
		if claims[0].Num > claims[1].Num {
			n1, n2 = n2, n1
		}
		if w := []string{"even:e" + n1, "odd:o" + n1, "even:e" + n2, "odd:o" + n2, "plain:x"}; !reflect.DeepEqual(got, w) {
			t.Fatalf("streamed %q, want %q", got, w)
		}
	})
}

// TestBatchResultsOfAZombieCountOnce: a server dies with claimed slices, its
// slices are requeued and completed by another server, then the dead
// server's attempt completes late (a zombie): the statistics and category
// counts still count each slice once, on both strategies.
func TestBatchResultsOfAZombieCountOnce(t *testing.T) {
	strategies(t, func(t *testing.T, s store.SliceStore) {
		ctx := context.Background()
		job := bson.NewObjectID()
		upload(t, s, job, 2)
		fa := s.NewFeeder(job, "a", 2)
		zombie, err := fa.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := fa.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if n, err := s.RequeueServer(ctx, job, "a"); err != nil || n != 1 {
			t.Fatalf("requeue: %d, %v", n, err)
		}
		result := store.Result{Batch: &store.BatchResult{
			Categories: []store.CategoryOutput{{Name: "even", Count: 3, Records: []byte("e")}},
			Statistics: map[string]int64{"even": 3},
			Dropped:    1,
		}}
		for _, c := range claimAll(t, s.NewFeeder(job, "c", 2)) {
			if won, err := s.Complete(ctx, job, c, result); err != nil || !won {
				t.Fatalf("complete slice %d: %v, %v", c.Num, won, err)
			}
		}
		if _, err := s.Complete(ctx, job, zombie, result); err != nil {
			t.Fatal(err)
		}
		tot, err := s.Totals(ctx, job)
		if err != nil {
			t.Fatal(err)
		}
		want := store.Totals{Categories: map[string]int64{"even": 6}, Statistics: map[string]int64{"even": 6}, Dropped: 2}
		if !reflect.DeepEqual(tot, want) {
			t.Fatalf("totals %+v, want %+v", tot, want)
		}
	})
}
