package botjs

import (
	"testing"

	"github.com/spa-engine/spa/actors/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }
