package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Tab is the single tab of one user: a page in its own browser context
// (cookies, storage, permissions and cache are not shared with other users).
// Make it with [Browser.NewUser]. A Tab's methods must not be called
// concurrently.
type Tab struct {
	name string
	ctx  context.Context
}

// pollInterval is how often WaitFor evaluates its expression.
const pollInterval = 50 * time.Millisecond

// NewUser opens a new browser context with one tab for the user name, and
// registers its cleanup (the tab and its context are closed before the
// browser). Every document loaded in the tab gets window.__probe (see
// [ProbeJS]). The page's console messages, uncaught exceptions and browser
// log entries are logged with t.Logf as "[name] type: text".
func (b *Browser) NewUser(t testing.TB, name string) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	tab := &Tab{name: name, ctx: ctx}

	// The first Run creates the browser context and the tab.
	if err := within(startTimeout, func() error { return chromedp.Do(ctx) }); err != nil {
		cancel()
		t.Fatalf("browser: new user %s: %v", name, err)
	}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return // the tab is closed
			}
			tab.logMessage(t, m)
		}
	}()
	t.Cleanup(func() {
		cancel() // closes the tab, disposes of the browser context
		<-done   // no t.Logf after the test ends
	})

	sctx, scancel := context.WithTimeout(ctx, startTimeout)
	defer scancel()
	if _, err := chromedp.Call(sctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source:         ProbeJS,
		RunImmediately: ptr(true),
	}); err != nil {
		t.Fatalf("browser: [%s] installing the probe: %v", name, err)
	}
	return tab
}

func (tab *Tab) logMessage(t testing.TB, m chromedp.ConsoleMessage) {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s: %s", tab.name, m.Type, m.Text)
	if m.URL != "" {
		fmt.Fprintf(&b, " (%s:%d:%d)", m.URL, m.Line+1, m.Column+1)
	}
	if m.Exception != nil && m.Exception.Exception != nil {
		// The description is the error and its stack; Text has the error.
		desc := m.Exception.Exception.Description
		if first, rest, ok := strings.Cut(desc, "\n"); ok && strings.Contains(m.Text, first) {
			desc = rest
		}
		if desc != "" && !strings.Contains(m.Text, desc) {
			fmt.Fprintf(&b, "\n%s", desc)
		}
	}
	t.Logf("%s", b.String())
}

// Name is the user name of the tab.
func (tab *Tab) Name() string { return tab.name }

// Context is the chromedp context of the tab, for chromedp actions that
// this package does not wrap. Do not cancel it and do not set a timeout on
// it directly; derive contexts from it.
func (tab *Tab) Context() context.Context { return tab.ctx }

// Navigate loads url in the tab and waits for its load event. It fails t on
// an error, or when the url's host is not a loopback address.
func (tab *Tab) Navigate(t testing.TB, url string) {
	t.Helper()
	if err := checkURL(url); err != nil {
		t.Fatalf("browser: [%s] navigate %s: %v", tab.name, url, err)
	}
	ctx, cancel := context.WithTimeout(tab.ctx, EvalTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("browser: [%s] navigate %s: %v", tab.name, url, err)
	}
}

// InstallProbe defines window.__probe in the current document, if it is
// not defined yet. NewUser already arranges that for every document loaded
// in the tab, so this is only needed after replacing the document by other
// means (for example document.open).
func (tab *Tab) InstallProbe(t testing.TB) {
	t.Helper()
	if err := tab.EvalErr(ProbeJS, nil); err != nil {
		t.Fatalf("browser: [%s] installing the probe: %v", tab.name, err)
	}
}

// Eval evaluates the JavaScript expression js in the page, awaits the
// promise that it returns (if any), and decodes the JSON of the result into
// out (unless out is nil). It fails t with the text of the JavaScript
// exception (or rejection) on error.
func (tab *Tab) Eval(t testing.TB, js string, out any) {
	t.Helper()
	if err := tab.EvalErr(js, out); err != nil {
		t.Fatalf("browser: [%s] %v", tab.name, err)
	}
}

// EvalErr is Eval returning the error instead of failing a test. An
// exception or a rejected promise is a [*JSError]. It gives up after
// [EvalTimeout].
func (tab *Tab) EvalErr(js string, out any) error {
	ctx, cancel := context.WithTimeout(tab.ctx, EvalTimeout)
	defer cancel()
	return tab.EvalContext(ctx, js, out)
}

// EvalContext is EvalErr with the context ctx (derived from [Tab.Context])
// instead of the default timeout.
func (tab *Tab) EvalContext(ctx context.Context, js string, out any) error {
	res, err := chromedp.Run(ctx, chromedp.Evaluate[*runtime.RemoteObject](js, chromedp.EvalAwaitPromise, chromedp.EvalAsValue))
	if err != nil {
		var ex *chromedp.ExceptionError
		if errors.As(err, &ex) {
			return &JSError{Expr: js, Details: ex.ExceptionDetails}
		}
		return fmt.Errorf("eval %s: %w", short(js), err)
	}
	if out == nil {
		return nil
	}
	raw := []byte(res.Value)
	switch {
	case res.Type == runtime.RemoteObjectTypeUndefined:
		return fmt.Errorf("eval %s: the result is undefined", short(js))
	case res.UnserializableValue != "":
		return fmt.Errorf("eval %s: the result %s is not JSON", short(js), res.UnserializableValue)
	case len(raw) == 0:
		raw = []byte("null")
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("eval %s: decoding %s: %w", short(js), short(string(raw)), err)
	}
	return nil
}

// JSError is the error of an evaluation that threw, or whose promise was
// rejected.
type JSError struct {
	Expr    string                    // the evaluated expression
	Details *runtime.ExceptionDetails // as reported by the browser
}

// Message is the thrown value: the description of an Error (its name,
// message and stack), or the JSON of any other value (a string, a number).
func (e *JSError) Message() string {
	d := e.Details
	if o := d.Exception; o != nil {
		if o.Description != "" {
			return o.Description
		}
		if len(o.Value) > 0 {
			return string(o.Value)
		}
	}
	return d.Text
}

// Error is "eval <expression>: <Text>: <Message>", where Text is the
// browser's summary such as "Uncaught (in promise)".
func (e *JSError) Error() string {
	return fmt.Sprintf("eval %s: %s: %s", short(e.Expr), e.Details.Text, e.Message())
}

// WaitFor polls the JavaScript boolean expression js (a promise is
// awaited) every 50 ms until it is true, and fails t when it is still not
// true after timeout. Evaluation errors while polling (for example a
// ReferenceError before the page defined a variable) count as false; the
// last one is reported on timeout. desc names the awaited condition in the
// failure message.
func (tab *Tab) WaitFor(t testing.TB, desc, js string, timeout time.Duration) {
	t.Helper()
	if err := tab.WaitForErr(desc, js, timeout); err != nil {
		t.Fatalf("browser: [%s] %v", tab.name, err)
	}
}

// WaitForErr is WaitFor returning the error instead of failing a test.
func (tab *Tab) WaitForErr(desc, js string, timeout time.Duration) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(tab.ctx, timeout)
	defer cancel()
	expr := "Promise.resolve(" + js + ").then(v => !!v)"
	var lastErr error
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		var ok bool
		err := tab.EvalContext(ctx, expr, &ok)
		switch {
		case err == nil && ok:
			return nil
		case err != nil && ctx.Err() == nil:
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if tab.ctx.Err() != nil {
				return fmt.Errorf("waiting for %s: the tab is closed: %w", desc, context.Cause(tab.ctx))
			}
			if lastErr != nil {
				return fmt.Errorf("waiting for %s: not true after %v (%s); last error: %w", desc, time.Since(start).Round(time.Millisecond), short(js), lastErr)
			}
			return fmt.Errorf("waiting for %s: not true after %v (%s)", desc, time.Since(start).Round(time.Millisecond), short(js))
		case <-tick.C:
		}
	}
}

// short abbreviates a JavaScript expression for messages.
func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		return fmt.Sprintf("%q...", s[:117])
	}
	return fmt.Sprintf("%q", s)
}

func ptr[T any](v T) *T { return &v }
