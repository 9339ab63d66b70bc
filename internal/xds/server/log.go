package server

import (
	"fmt"

	"github.com/go-logr/logr"

	cplog "github.com/envoyproxy/go-control-plane/pkg/log"
)

// cpLogger passes go-control-plane's printf-style logs to logr: errors as
// errors, everything else at V(1), since the library logs routine protocol
// events (stale nonces, partial ADS requests) as info and warnings.
type cpLogger struct{ l logr.Logger }

var _ cplog.Logger = cpLogger{}

func (c cpLogger) Debugf(format string, args ...any) {
	if l := c.l.V(2); l.Enabled() {
		l.Info("go-control-plane", "msg", fmt.Sprintf(format, args...))
	}
}

func (c cpLogger) Infof(format string, args ...any) {
	if l := c.l.V(1); l.Enabled() {
		l.Info("go-control-plane", "msg", fmt.Sprintf(format, args...))
	}
}

func (c cpLogger) Warnf(format string, args ...any) {
	if l := c.l.V(1); l.Enabled() {
		l.Info("go-control-plane", "msg", fmt.Sprintf(format, args...))
	}
}

func (c cpLogger) Errorf(format string, args ...any) {
	c.l.Error(fmt.Errorf(format, args...), "go-control-plane")
}
