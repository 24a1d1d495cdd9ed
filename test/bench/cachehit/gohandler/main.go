// Command gohandler is the cachehit benchmark's yardstick: a bare net/http
// server writing a file's bytes from memory, with the Content-Type and
// Content-Length a cache would send. It is as fast as Go serves bytes; the
// benchmark compares coral's cache hits with it.
//
//	gohandler -listen 127.0.0.1:18003 -dir DIR    (serves DIR/<name> as /<name>)
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18003", "address to listen on")
	dir := flag.String("dir", ".", "directory whose files are served from memory")
	flag.Parse()
	entries, err := os.ReadDir(*dir)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(*dir, e.Name()))
		if err != nil {
			log.Fatal(err)
		}
		size := strconv.Itoa(len(data))
		mux.HandleFunc("/"+e.Name(), func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "text/plain")
			h.Set("Content-Length", size)
			_, _ = w.Write(data)
		})
	}
	log.Fatal(http.ListenAndServe(*listen, mux))
}
