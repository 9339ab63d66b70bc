package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// echoReply is the JSON body of every HTTP answer but /healthz, and the
// fields of the gRPC echo's reply.
type echoReply struct {
	// Who answered.
	Pod       string `json:"pod,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Version   string `json:"version,omitempty"`
	Hostname  string `json:"hostname"`

	// What was asked. Host is the :authority for HTTP/2 and gRPC; Path is
	// the full method for gRPC.
	Protocol   string              `json:"protocol"` // http or grpc
	Proto      string              `json:"proto,omitempty"`
	Method     string              `json:"method,omitempty"`
	Host       string              `json:"host"`
	Path       string              `json:"path"`
	Query      string              `json:"query,omitempty"`
	RemoteAddr string              `json:"remoteAddr"`
	Headers    map[string][]string `json:"headers"`
	BodyBytes  int64               `json:"bodyBytes"`

	// Status is the HTTP status or gRPC code answered.
	Status int `json:"status"`
}

func newHandler(id identity) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { echo(w, r, id) })
	return mux
}

func echo(w http.ResponseWriter, r *http.Request, id identity) {
	status, delay, abort, err := httpFaults(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !wait(r.Context(), delay) {
		return
	}
	if abort {
		panic(http.ErrAbortHandler) // net/http closes the connection, answering nothing
	}
	n, _ := io.Copy(io.Discard, r.Body)
	reply := echoReply{
		Pod: id.Pod, Namespace: id.Namespace, Version: id.Version, Hostname: id.Hostname,
		Protocol: "http", Proto: r.Proto, Method: r.Method, Host: r.Host,
		Path: r.URL.Path, Query: r.URL.RawQuery, RemoteAddr: r.RemoteAddr,
		Headers: r.Header, BodyBytes: n, Status: status,
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(reply)
}

// httpFaults reads the faults a request asks for: a header wins over the
// query parameter of the same meaning.
func httpFaults(r *http.Request) (status int, delay time.Duration, abort bool, err error) {
	get := func(header, param string) string {
		if v := r.Header.Get(header); v != "" {
			return v
		}
		return r.URL.Query().Get(param)
	}
	status = http.StatusOK
	if v := get("x-echo-status", "status"); v != "" {
		if status, err = strconv.Atoi(v); err != nil || status < 200 || status > 599 {
			return 0, 0, false, fmt.Errorf("x-echo-status %q: want a status from 200 to 599", v)
		}
	}
	if v := get("x-echo-delay", "delay"); v != "" {
		if delay, err = time.ParseDuration(v); err != nil || delay < 0 {
			return 0, 0, false, fmt.Errorf("x-echo-delay %q: want a duration such as 200ms", v)
		}
	}
	if v := get("x-echo-abort", "abort"); v != "" {
		if abort, err = strconv.ParseBool(v); err != nil {
			return 0, 0, false, fmt.Errorf("x-echo-abort %q: want true or false", v)
		}
	}
	return status, delay, abort, nil
}

// wait sleeps for d and reports whether the caller is still there.
func wait(ctx context.Context, d time.Duration) bool {
	if d == 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
