package encryption_test

import (
	"testing"

	"github.com/rocketjob-go/rocketjob/rocketjobtest"
)

// TestMain stops the embedded database the examples start, once the tests
// are done.
func TestMain(m *testing.M) { rocketjobtest.Main(m) }
