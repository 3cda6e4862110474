package rocketjobtest_test

import (
	"testing"

	"github.com/rocketjob-go/rocketjob/rocketjobtest"
)

// TestMain stops the shared embedded database once the tests are done.
func TestMain(m *testing.M) { rocketjobtest.Main(m) }
