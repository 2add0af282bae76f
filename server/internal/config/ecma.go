package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// JSON Schema patterns are ECMA-262 regular expressions, which is also what
// zod runs. Go's RE2 reads the same syntax for the subset the schema uses, with
// two differences in meaning that compileECMA rewrites away:
//   - \s and \S: ECMA's white space includes \v and the Unicode spaces and line
//     terminators; RE2's is [\t\n\f\r ].
//   - . : ECMA's excludes \r, U+2028 and U+2029 too; RE2's only \n.
//
// What RE2 cannot do (lookaround, backreferences) fails to compile, so a
// pattern outside the subset fails the tests instead of meaning something else.
// dlclark/regexp2 would run full ECMA syntax, but backtracks; RE2 keeps every
// match linear in the length of the value.
const ecmaSpace = `\t\n\v\f\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}`

const ecmaDot = `[^\n\r\x{2028}\x{2029}]`

func compileECMA(pattern string) (jsonschema.Regexp, error) {
	re2, err := ecmaToRE2(pattern)
	if err != nil {
		return nil, err
	}
	return regexp.Compile(re2)
}

func ecmaToRE2(pattern string) (string, error) {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch {
		case c == '\\':
			if i+1 == len(pattern) {
				return "", fmt.Errorf("pattern %q ends in a lone backslash", pattern)
			}
			i++
			switch e := pattern[i]; {
			case e == 's' && inClass:
				b.WriteString(ecmaSpace)
			case e == 's':
				b.WriteString("[" + ecmaSpace + "]")
			case e == 'S' && inClass:
				return "", fmt.Errorf("pattern %q: \\S inside a character class is not supported", pattern)
			case e == 'S':
				b.WriteString("[^" + ecmaSpace + "]")
			case e >= '1' && e <= '9':
				return "", fmt.Errorf("pattern %q: backreferences are not supported", pattern)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		case c == '[' && !inClass:
			// ECMA's [] matches nothing and [^] anything; RE2 reads a ] there as a member.
			if strings.HasPrefix(pattern[i:], "[]") || strings.HasPrefix(pattern[i:], "[^]") {
				return "", fmt.Errorf("pattern %q: an empty character class is not supported", pattern)
			}
			inClass = true
			b.WriteByte(c)
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		case c == '.' && !inClass:
			b.WriteString(ecmaDot)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
