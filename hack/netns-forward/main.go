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

// Command netns-forward is the local cluster's only door from the host into its network
// namespace (hack/local-cluster.sh): it listens on an address of the host (127.0.0.1) and
// forwards each TCP connection to an address inside a named network namespace. It replaces
// `kubectl port-forward`, which ends for every user when one connection is reset.
//
// Each connection is its own pair: a half-close (FIN) on one side is passed on as a
// half-close to the other, a reset on one side as a reset to the other (SOCK linger 0), and
// whatever happens to one pair is logged and never affects another or the listener.
//
//	netns-forward -listen 127.0.0.1:8080 -netns /run/netns/coderun-dev -target 10.96.0.10:80
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host address to listen on")
	netns := flag.String("netns", "", "network namespace to dial in (a path such as /run/netns/NAME)")
	target := flag.String("target", "", "address (IP:port) to forward to, inside the network namespace")
	verbose := flag.Bool("v", false, "log every connection, not only failures")
	flag.Parse()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *netns == "" || *target == "" {
		log.Error("-netns and -target are required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listening", "listen", *listen, "err", err)
		os.Exit(1)
	}
	f := &forwarder{netns: *netns, target: *target, log: log}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = ln.Close()
	}()
	log.Info("forwarding", "listen", ln.Addr().String(), "netns", *netns, "target", *target)
	if err := f.serve(ln); err != nil && ctx.Err() == nil {
		log.Error("serving", "listen", ln.Addr().String(), "err", err)
		os.Exit(1)
	}
	log.Info("stopped", "listen", ln.Addr().String())
}

// forwarder forwards the connections of a listener to target inside the network namespace
// at the path netns.
type forwarder struct {
	netns  string
	target string
	log    *slog.Logger
	conns  atomic.Uint64 // numbers the connections in the log
	// handlers counts the connections being forwarded (the test waits for them to end).
	handlers sync.WaitGroup
}

// dialTimeout bounds a connect inside the namespace (a target that drops SYNs).
const dialTimeout = 10 * time.Second

// serve accepts until the listener is closed. Temporary accept errors (out of file
// descriptors) are logged and retried: the listener must outlive any burst.
func (f *forwarder) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				f.log.Warn("accept failed; retrying", "err", err)
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accepting on %s: %w", ln.Addr(), err)
		}
		f.handlers.Go(func() { f.handle(c.(*net.TCPConn)) })
	}
}

// dialInNetns connects to the target from inside the namespace. The socket is made on an OS
// thread that was moved into the namespace, and a socket keeps the namespace it was made in.
// The thread is never moved back: its goroutine ends locked, so the Go runtime discards the
// thread instead of reusing one that is in the wrong namespace.
func (f *forwarder) dialInNetns() (*net.TCPConn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // no Unlock: see above
		ns, err := os.Open(f.netns)
		if err != nil {
			ch <- result{err: fmt.Errorf("opening network namespace %s: %w", f.netns, err)}
			return
		}
		err = unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET)
		_ = ns.Close()
		if err != nil {
			ch <- result{err: fmt.Errorf("entering network namespace %s: %w", f.netns, err)}
			return
		}
		c, err := net.DialTimeout("tcp", f.target, dialTimeout)
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	return r.c.(*net.TCPConn), nil
}

// handle forwards one client connection: each direction is copied until its reader ends.
// A clean end (EOF) becomes CloseWrite on the other side, and the pair closes when both
// directions have ended; an error in either direction (a reset, a failed write) resets both
// connections at once, so each peer sees what a direct connection would have shown it.
func (f *forwarder) handle(client *net.TCPConn) {
	id := f.conns.Add(1)
	log := f.log.With("conn", id, "client", client.RemoteAddr().String(), "target", f.target)
	start := time.Now()
	server, err := f.dialInNetns()
	if err != nil {
		// Refused or unreachable inside: the client gets a reset, as from a closed port.
		log.Warn("dialing the target failed; resetting the client", "err", err)
		abort(client)
		return
	}
	log.Debug("connected", "local", server.LocalAddr().String())

	var once sync.Once
	var failure error
	fail := func(err error) {
		once.Do(func() {
			failure = err
			abort(client)
			abort(server)
		})
	}
	var wg sync.WaitGroup
	var up, down int64
	pipe := func(dst, src *net.TCPConn, n *int64, dir string) {
		defer wg.Done()
		var err error
		*n, err = io.Copy(dst, src)
		if err != nil {
			fail(fmt.Errorf("%s: %w", dir, err))
			return
		}
		// The source sent FIN: pass the half-close on and keep the other direction open.
		if err := dst.CloseWrite(); err != nil {
			fail(fmt.Errorf("%s: passing the half-close on: %w", dir, err))
		}
	}
	wg.Add(2)
	go pipe(server, client, &up, "client to target")
	go pipe(client, server, &down, "target to client")
	wg.Wait()
	_ = client.Close()
	_ = server.Close()
	attrs := []any{"sent", up, "received", down, "duration", time.Since(start).Round(time.Millisecond).String()}
	if failure != nil {
		log.Info("connection reset", append(attrs, "err", failure)...)
		return
	}
	log.Debug("connection closed", attrs...)
}

// abort closes c with a reset (RST) instead of a FIN, and so unblocks the goroutine reading
// from it. A connection already closed is left alone.
func abort(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}
