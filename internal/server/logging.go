package server

import (
	"errors"
	"io"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/statekeeper/statekeeper/internal/config"
)

// logBufferSize is the log lines buffered before a write.
const logBufferSize = 32 << 10

// NewLogger returns the logger cfg asks for, writing to w: zap underneath
// (JSON in production, console lines for people), logr on top. The caller
// installs it with ctrl.SetLogger; flush is zap's Sync, for the exit path.
func NewLogger(cfg config.Config, w io.Writer) (log logr.Logger, flush func() error, err error) {
	level, err := config.ParseLogLevel(cfg.LogLevel)
	if err != nil {
		return logr.Discard(), nil, err
	}
	encoding := zap.NewProductionEncoderConfig()
	encoding.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	if cfg.LogFormat == config.LogFormatConsole {
		encoding.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(encoding)
	} else {
		encoder = zapcore.NewJSONEncoder(encoding)
	}
	// One line per admission decision would otherwise be one write system
	// call per request; buffered, the lines go out in batches, at the latest
	// a second later (klog, which Kubernetes' own components log through,
	// flushes every five). flush writes what is left, on the way out.
	// 32 KiB hold about 90 decision lines (350 bytes each), so a write
	// carries that many at any rate; zap's default buffer, 256 KiB, would
	// keep 224 KiB more of the heap for the life of the process.
	sink := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(w), FlushInterval: time.Second, Size: logBufferSize}
	// logr's V(n) is zap level -n, so verbosity n enables V(0)..V(n).
	core := zapcore.NewCore(encoder, sink, zap.NewAtomicLevelAt(zapcore.Level(level)))
	z := zap.New(core, zap.AddCaller(), zap.ErrorOutput(sink))
	flush = func() error {
		err := z.Sync()
		return errors.Join(err, sink.Stop())
	}
	return zapr.NewLogger(z), flush, nil
}

// WithoutCaller returns log without the caller of each line, where the
// logger is zap's. Every admission decision line has the same caller, a
// line of the webhook handler, and finding it (runtime.Callers and its
// symbols) costs as much as writing the rest of the line.
func WithoutCaller(log logr.Logger) logr.Logger {
	if z, ok := log.GetSink().(zapr.Underlier); ok {
		return zapr.NewLogger(z.GetUnderlying().WithOptions(zap.WithCaller(false)))
	}
	return log
}
