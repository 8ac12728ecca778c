package server

import (
	"io"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/statekeeper/statekeeper/internal/config"
)

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
	sink := zapcore.Lock(zapcore.AddSync(w))
	// logr's V(n) is zap level -n, so verbosity n enables V(0)..V(n).
	core := zapcore.NewCore(encoder, sink, zap.NewAtomicLevelAt(zapcore.Level(level)))
	z := zap.New(core, zap.AddCaller(), zap.ErrorOutput(sink))
	return zapr.NewLogger(z), z.Sync, nil
}
