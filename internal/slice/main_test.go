package slice

import (
	"testing"

	"github.com/rocketjob-go/rocketjob/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }
