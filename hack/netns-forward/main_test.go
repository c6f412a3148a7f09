/*
Copyright 2026 The coderun Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coderun-dev/coderun/internal/testneed"
)

// newNetns makes a network namespace of the test's own and returns a path to it. Unlike
// `ip netns add`, it leaves nothing on the host (no /run/netns mount): the namespace lives
// as long as the test holds its file open.
func newNetns(t *testing.T) string {
	t.Helper()
	testneed.Root(t, "it creates a network namespace")
	if _, err := exec.LookPath("nsenter"); err != nil {
		testneed.Skip(t, "needs nsenter (util-linux): %v", err)
	}
	ch := make(chan error, 1)
	var ns *os.File
	go func() {
		// This thread moves to the new namespace and is never moved back (no Unlock: the
		// runtime discards it).
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- fmt.Errorf("unshare: %w", err)
			return
		}
		var err error
		ns, err = os.Open("/proc/thread-self/ns/net")
		ch <- err
	}()
	if err := <-ch; err != nil {
		t.Fatalf("making a network namespace: %v", err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	path := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.Fd())
	if out, err := exec.Command("nsenter", "--net="+path, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("setting lo up in the test's namespace: %v: %s", err, out)
	}
	return path
}

// listenIn listens on addr inside the namespace at path (a socket keeps the namespace of
// the thread that made it; that thread is discarded afterwards, see dialInNetns).
func listenIn(t *testing.T, path, addr string) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(path)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, path, r.err)
	}
	t.Cleanup(func() { _ = r.ln.Close() })
	return r.ln
}

// server answers inside the namespace according to the first line a client sends:
//
//	echo      echoes every further line
//	count     reads to EOF (the client's half-close), answers "N bytes", then closes
//	reset     answers "bye" and closes with a reset
//	wait      reads until the client goes away, then reports how it went (on resets)
func server(t *testing.T, ln net.Listener, resets chan<- error) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func(c *net.TCPConn) {
			defer func() { _ = c.Close() }()
			r := bufio.NewReader(c)
			mode, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch strings.TrimSpace(mode) {
			case "echo":
				_, _ = io.Copy(c, r)
			case "count":
				n, err := io.Copy(io.Discard, r)
				if err != nil {
					return
				}
				_, _ = fmt.Fprintf(c, "%d bytes\n", n)
			case "reset":
				_, _ = io.WriteString(c, "bye\n")
				_ = c.SetLinger(0)
			case "wait":
				_, err := io.Copy(io.Discard, r)
				resets <- err
			}
		}(c.(*net.TCPConn))
	}
}

// setup starts the server in a new namespace and the forwarder to it on the host; it
// returns the forwarder's host address and the server's channel of "wait" endings.
func setup(t *testing.T) (string, chan error) {
	ns := newNetns(t)
	inner := listenIn(t, ns, "127.0.0.1:0")
	resets := make(chan error, 4)
	go server(t, inner, resets)
	// The server is inside only: the same address on the host reaches nothing, so what
	// answers below came through the namespace.
	if c, err := net.DialTimeout("tcp", inner.Addr().String(), time.Second); err == nil {
		_ = c.Close()
		t.Fatalf("%s answers on the host too; the test cannot tell the namespace's server from it", inner.Addr())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{netns: ns, target: inner.Addr().String(), log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	done := make(chan error, 1)
	go func() { done <- f.serve(ln) }()
	// (Cleanups run last first: the clients below are closed by now, so every forwarded
	// connection ends.)
	t.Cleanup(func() {
		_ = ln.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		f.handlers.Wait()
	})
	return ln.Addr().String(), resets
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// conn is a client of the forwarder; every read has a deadline so that a broken forward
// fails the test instead of hanging it.
type conn struct {
	*net.TCPConn
	r *bufio.Reader
}

func dial(t *testing.T, addr, mode string) *conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing the forwarder: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, mode+"\n"); err != nil {
		t.Fatalf("writing to the forwarder: %v", err)
	}
	return &conn{c.(*net.TCPConn), bufio.NewReader(c)}
}

func (c *conn) line(t *testing.T) string {
	t.Helper()
	s, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading through the forwarder: %v (got %q)", err, s)
	}
	return strings.TrimSpace(s)
}

// exchange checks that an echo connection still works.
func (c *conn) exchange(t *testing.T, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		t.Fatalf("writing %q: %v", msg, err)
	}
	if got := c.line(t); got != msg {
		t.Fatalf("echo: got %q, want %q", got, msg)
	}
}

func TestForward(t *testing.T) {
	addr, resets := setup(t)
	// A client that stays connected through everything below: no other connection's fate
	// may reach it.
	other := dial(t, addr, "echo")
	other.exchange(t, "before")

	t.Run("exchange", func(t *testing.T) {
		c := dial(t, addr, "echo")
		c.exchange(t, "hello")
		c.exchange(t, strings.Repeat("x", 1<<20))
	})

	t.Run("half-close", func(t *testing.T) {
		c := dial(t, addr, "count")
		if _, err := io.WriteString(c, strings.Repeat("y", 100000)); err != nil {
			t.Fatal(err)
		}
		// Only our half is closed: the server sees EOF and can still answer.
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		other.exchange(t, "during a half-close")
		if got := c.line(t); got != "100000 bytes" {
			t.Fatalf("after the half-close: got %q, want %q", got, "100000 bytes")
		}
		// Then the server's close arrives as EOF.
		if rest, err := io.ReadAll(c.r); err != nil || len(rest) > 0 {
			t.Fatalf("after the answer: %q, %v; want EOF", rest, err)
		}
	})

	t.Run("target resets", func(t *testing.T) {
		c := dial(t, addr, "reset")
		// What the server sent before its reset arrives, then the reset itself.
		if got := c.line(t); got != "bye" {
			t.Fatalf("got %q, want bye", got)
		}
		_, err := c.r.ReadString('\n')
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("after the server's reset: %v, want a connection reset", err)
		}
		other.exchange(t, "after a reset by the target")
	})

	t.Run("client resets", func(t *testing.T) {
		c := dial(t, addr, "wait")
		other.exchange(t, "while a client waits") // c is connected through by now
		_ = c.SetLinger(0)
		_ = c.Close()
		select {
		case err := <-resets:
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the server saw %v, want a connection reset", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the server never saw the client's reset")
		}
		other.exchange(t, "after a reset by a client")
	})

	t.Run("client leaves", func(t *testing.T) {
		c := dial(t, addr, "wait")
		other.exchange(t, "while a client waits")
		_ = c.Close()
		select {
		case err := <-resets:
			if err != nil {
				t.Fatalf("the server saw %v, want a clean end", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the server never saw the client's close")
		}
	})

	// Every case above also checks that a new client still gets through afterwards.
	c := dial(t, addr, "echo")
	c.exchange(t, "a new client at the end")
	other.exchange(t, "the first client at the end")
}

// A target that refuses: the client is reset, and the listener keeps serving.
func TestForwardRefused(t *testing.T) {
	ns := newNetns(t)
	inner := listenIn(t, ns, "127.0.0.1:0")
	refusing := inner.Addr().String()
	_ = inner.Close() // nothing listens there any more
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &forwarder{netns: ns, target: refusing, log: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	done := make(chan error, 1)
	go func() { done <- f.serve(ln) }()
	defer func() {
		_ = ln.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		f.handlers.Wait()
	}()
	for i := range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			_, err = c.Read(make([]byte, 1))
			_ = c.Close()
		}
		// The reset may come before the client's connect has returned: then connect
		// reports it (a refused connect would mean the listener is gone).
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("connection %d to a refusing target: %v, want a connection reset", i, err)
		}
	}
}
