package httpapi

import (
	"testing"

	"go.uber.org/goleak"
)

// Handlers wait for runs and the database in goroutines of their own: none may outlive the
// tests' requests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
