package runner

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coderun-dev/coderun/internal/report"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	valid := DefaultConfig()
	valid.Source = "/code/main.py"
	if err := valid.Validate(); err != nil {
		t.Fatalf("default config with a source: %v", err)
	}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"no source", func(c *Config) { c.Source = "" }, "source file is required"},
		{"no python", func(c *Config) { c.Python = "" }, "python"},
		{"no workdir", func(c *Config) { c.Workdir = "" }, "working directory"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout"},
		{"huge timeout", func(c *Config) { c.Timeout = MaxTimeout + 1 }, "timeout"},
		{"zero output limit", func(c *Config) { c.OutputLimit = 0 }, "output limit"},
		{"output limit over the maximum", func(c *Config) { c.OutputLimit = report.MaxOutputLimit + 1 }, "output limit"},
		{"output limit at the maximum", func(c *Config) { c.OutputLimit = report.MaxOutputLimit }, ""},
		{"negative memory limit", func(c *Config) { c.MemoryLimit = -1 }, "memory limit"},
		{"zero processes", func(c *Config) { c.MaxProcesses = 0 }, "max processes"},
		{"negative file size", func(c *Config) { c.MaxFileSize = -1 }, "file size"},
		{"zero file size", func(c *Config) { c.MaxFileSize = 0 }, ""},
		{"too few open files", func(c *Config) { c.MaxOpenFiles = 3 }, "open files"},
		{"negative uid", func(c *Config) { c.RunAsUID = -5 }, "uid"},
		{"uid too large", func(c *Config) { c.RunAsUID = 1 << 32 }, "uid"},
		{"no self", func(c *Config) { c.Self = "" }, "executable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one about %q", err, tt.wantErr)
			}
		})
	}
	t.Run("uid needs root", func(t *testing.T) {
		c := valid
		c.RunAsUID = 12345
		err := c.Validate()
		if root := os.Geteuid() == 0; root != (err == nil) {
			t.Errorf("root %v, error %v", root, err)
		}
	})
}

func TestCPULimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		timeout    time.Duration
		soft, hard uint64
	}{
		{time.Millisecond, 2, 3},
		{time.Second, 2, 3},
		{time.Second + time.Nanosecond, 3, 4},
		{1500 * time.Millisecond, 3, 4},
		{10 * time.Second, 11, 12},
	}
	for _, tt := range tests {
		c := Config{Timeout: tt.timeout}
		if soft, hard := c.cpuLimitSeconds(); soft != tt.soft || hard != tt.hard {
			t.Errorf("timeout %v: RLIMIT_CPU %d/%d, want %d/%d", tt.timeout, soft, hard, tt.soft, tt.hard)
		}
	}
}

func TestValidateCommands(t *testing.T) {
	t.Parallel()
	base := DefaultConfig()
	base.RunCommand = []string{"./main"}
	if err := base.Validate(); err != nil {
		t.Fatalf("a run command alone: %v", err)
	}
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"source and run command", func(c *Config) { c.Source = "main.py" }, "the run command names the program"},
		{"empty program name", func(c *Config) { c.RunCommand = []string{""} }, "run command has no program name"},
		{"NUL in the run command", func(c *Config) { c.RunCommand = []string{"a", "b\x00"} }, "run command contains a NUL"},
		{"NUL in an argument", func(c *Config) { c.Args = []string{"\x00"} }, "argument contains a NUL"},
		{"empty compile command", func(c *Config) { c.Compile = &CompileConfig{Timeout: time.Second} }, "compile command has no program name"},
		{"no compile timeout", func(c *Config) { c.Compile = &CompileConfig{Command: []string{"cc"}} }, "compile timeout 0s"},
		{"negative compile memory", func(c *Config) {
			c.Compile = &CompileConfig{Command: []string{"cc"}, Timeout: time.Second, MemoryLimit: -1}
		}, "compile memory limit -1"},
		{"env without =", func(c *Config) { c.Env = []string{"PATH"} }, `"PATH" is not NAME=VALUE`},
		{"env with a bad name", func(c *Config) { c.Env = []string{"1A=x"} }, `"1A=x" is not NAME=VALUE`},
		{"env with a NUL", func(c *Config) { c.Env = []string{"A=\x00"} }, "is not NAME=VALUE"},
	} {
		c := base
		tt.change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one about %q", tt.name, err, tt.want)
		}
	}
}
