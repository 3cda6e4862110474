package rocketjob

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rocketjob-go/rocketjob/encryption"
	"github.com/rocketjob-go/rocketjob/internal/clientjob"
	"github.com/rocketjob-go/rocketjob/internal/clientstore"
	"github.com/rocketjob-go/rocketjob/internal/jobparams"
	"github.com/rocketjob-go/rocketjob/internal/jobrun"
	"github.com/rocketjob-go/rocketjob/internal/model"
	"github.com/rocketjob-go/rocketjob/internal/store"
)

// init installs what the module's own packages (server, sliced,
// rocketjobweb, rocketjobtest, the command line) need from this package and
// its users do not: a Client's store and job helpers, the job context and
// retry delay of the runners, and the parameter parsing of the front ends.
// They reach them through internal packages, which users cannot import.
func init() {
	clientstore.Set(func(client any) *store.Store { return client.(*Client).store })
	clientjob.Set(
		func(ctx context.Context, client, spec, opts any) (any, error) {
			var o *EnqueueOptions // nil means defaults
			if opts != nil {
				o = opts.(*EnqueueOptions)
			}
			job, err := client.(*Client).newJob(ctx, spec.(*TypeSpec), o)
			if err != nil {
				return nil, err
			}
			return job, nil
		},
		func(client, job any) (*encryption.Codec, error) { return client.(*Client).codec(job.(*Job)) },
		func(ctx context.Context, client any, job *model.Job) error {
			return client.(*Client).destroyAt(ctx, job)
		},
	)
	jobrun.Set(
		func(ctx context.Context, job any) context.Context { return contextWithJob(ctx, job.(*Job)) },
		retryDelay,
	)
	jobparams.Set(
		func(reg any, typ string, pairs []string) (bson.Raw, error) {
			return parseParams(reg.(*Registry), typ, pairs)
		},
		func(reg any, typ string, args any) (bson.Raw, error) { return encodeParams(reg.(*Registry), typ, args) },
	)
}
