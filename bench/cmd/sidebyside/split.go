package main

import (
	"fmt"
	"strings"
)

// splitWords splits a command line into words without running a shell, so
// that the benchmark times only the command itself. It follows the POSIX
// shell for the simple cases: blanks separate words; inside '...' every
// character is literal; inside "..." a backslash escapes $ ` " and \ and is
// kept before anything else. Nothing is expanded: no variables, globs,
// backslashes outside quotes or operators.
func splitWords(s string) ([]string, error) {
	var (
		words   []string
		word    strings.Builder
		inWord  bool // distinguishes the empty word '' from no word
		quote   rune // the open quote, or 0
		escaped bool // the previous rune was a backslash inside "..."
	)
	for _, r := range s {
		switch {
		case escaped:
			if !strings.ContainsRune("$`\"\\", r) {
				word.WriteByte('\\')
			}
			word.WriteRune(r)
			escaped = false
		case quote == '"' && r == '\\':
			escaped = true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			word.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}
