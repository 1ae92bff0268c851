// Command digestset-bench times docker/distribution's digestset on the workload of
// `cargo xtask bench-vs-go digest-set`: n sha256 digests (of the little-endian u64s 0..n)
// added one by one, then lookups of their 12-hex short IDs and of their full strings, then
// removed one by one. It prints one line per operation: name, nanoseconds per operation.
//
// Build in GOPATH mode against Debian's golang-github-docker-distribution-dev:
//
//	GO111MODULE=off GOPATH=<tmp>:/usr/share/gocode go build -o digestset-bench .
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/docker/distribution/digestset"
	digest "github.com/opencontainers/go-digest"
)

func main() {
	n := flag.Int("n", 100000, "digests in the set")
	lookups := flag.Int("lookups", 1000000, "lookups of each kind")
	rounds := flag.Int("rounds", 3, "rounds; the fastest is reported")
	flag.Parse()

	digests := make([]digest.Digest, *n)
	shorts := make([]string, *n)
	fulls := make([]string, *n)
	var buf [8]byte
	for i := range digests {
		binary.LittleEndian.PutUint64(buf[:], uint64(i))
		sum := sha256.Sum256(buf[:])
		h := hex.EncodeToString(sum[:])
		digests[i] = digest.Digest("sha256:" + h)
		shorts[i] = h[:12]
		fulls[i] = "sha256:" + h
	}

	best := map[string]float64{}
	record := func(name string, d time.Duration, ops int) {
		ns := float64(d.Nanoseconds()) / float64(ops)
		if old, ok := best[name]; !ok || ns < old {
			best[name] = ns
		}
	}
	var heap uint64
	for r := 0; r < *rounds; r++ {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)

		set := digestset.NewSet()
		start := time.Now()
		for _, d := range digests {
			if err := set.Add(d); err != nil {
				fail("add %s: %v", d, err)
			}
		}
		record("insert", time.Since(start), *n)

		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc

		for _, kind := range []struct {
			name  string
			terms []string
		}{{"lookup_12hex", shorts}, {"lookup_full", fulls}} {
			found := 0
			start = time.Now()
			for i := 0; i < *lookups; i++ {
				j := i % *n
				if d, err := set.Lookup(kind.terms[j]); err == nil && d == digests[j] {
					found++
				}
			}
			record(kind.name, time.Since(start), *lookups)
			if found != *lookups {
				fail("%s: %d of %d lookups found their digest", kind.name, found, *lookups)
			}
		}

		start = time.Now()
		for _, d := range digests {
			if err := set.Remove(d); err != nil {
				fail("remove %s: %v", d, err)
			}
		}
		record("remove", time.Since(start), *n)
		if len(set.All()) != 0 {
			fail("set not empty after removing everything")
		}
	}
	for _, name := range []string{"insert", "lookup_12hex", "lookup_full", "remove"} {
		fmt.Printf("%s %.1f\n", name, best[name])
	}
	// The set's own heap (entries, strings, the slice), per digest; the digests' strings are
	// shared with the input slice and not counted.
	fmt.Printf("heap_bytes_per_digest %.1f\n", float64(heap)/float64(*n))
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "digestset-bench: "+format+"\n", args...)
	os.Exit(1)
}
