// Package docs holds the project's documentation (the *.md files here) and
// the test that keeps it true: every Go identifier, repository path and
// command flag a doc names must exist (docs_test.go says how each is
// recognised).
package docs
