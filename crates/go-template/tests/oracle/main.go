// Command oracle runs template cases through Go's text/template and prints the expected
// results the Rust tests compare with (tests/fixtures/go1.19-exec.jsonl).
//
// Used with Go 1.19 (the Go of the docker 20.10 CLI): go run main.go < cases.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"
	"time"
)

type U struct{ V string }

type T struct {
	True      bool
	I         int
	U16       uint16
	X, S      string
	FloatZero float64
	F         float64
	U         *U
	SI        []int
	SIEmpty   []int
	SB        []bool
	AI        [3]int
	MSI       map[string]int
	MSIone    map[string]int
	MSIEmpty  map[string]int
	MXI       map[any]int
	MII       map[int]int
	SMSI      []map[string]int
	Empty0    any
	Empty1    any
	Empty2    any
	Empty3    any
	Empty4    any
	PI        *int
	PS        *string
	PSI       *[]int
	NIL       *int
	Tm        time.Time
	Dur       time.Duration
	Labels    map[string]string
	Tags      []string
	Num       json.Number
	Raw       any
	unexported int
}

func (t *T) Method0() string                 { return "M0" }
func (t *T) Method1(a int) int               { return a }
func (t *T) Method2(a uint16, b string) string { return fmt.Sprintf("Method2: %d %s", a, b) }
func (t *T) MAdd(a int, b []int) []int {
	v := make([]int, len(b))
	for i, x := range b {
		v[i] = x + a
	}
	return v
}
func (t *T) MyError(e bool) (bool, error) {
	if e {
		return true, errors.New("my error")
	}
	return false, nil
}
func (t *T) GetU() *U { return t.U }

func newInt(n int) *int          { return &n }
func newString(s string) *string { return &s }

func data() *T {
	var raw any
	dec := json.NewDecoder(strings.NewReader(`{"a":1,"b":[1,"x",null,true],"c":{"z":1.5,"y":null},"big":1982256,"s":"<&>"}`))
	dec.UseNumber()
	_ = dec.Decode(&raw)
	return &T{
		True: true, I: 17, U16: 16, X: "x", S: "xyz", F: 1982256.5,
		U:        &U{"v"},
		SI:       []int{3, 4, 5},
		SB:       []bool{true, false},
		AI:       [3]int{3, 4, 5},
		MSI:      map[string]int{"one": 1, "two": 2, "three": 3},
		MSIone:   map[string]int{"one": 1},
		MXI:      map[any]int{"one": 1},
		MII:      map[int]int{1: 1},
		SMSI:     []map[string]int{{"one": 1, "two": 2}, {"eleven": 11, "twelve": 12}},
		Empty1:   3,
		Empty2:   "empty2",
		Empty3:   []int{7, 8},
		Empty4:   &U{"UinEmpty"},
		PI:       newInt(23),
		PS:       newString("a string"),
		PSI:      &[]int{21, 22, 23},
		Tm:       time.Unix(1796005080, 977599).UTC(),
		Dur:      90 * time.Second,
		Labels:   map[string]string{"org.example": "peer", "stage": "child", "a b": "c"},
		Tags:     []string{"base:latest", "peer/base:v1"},
		Num:      json.Number("97"),
		Raw:      raw,
	}
}

func funcs() template.FuncMap {
	return template.FuncMap{
		"typeOf":   func(a any) string { return fmt.Sprintf("%T", a) },
		"zeroArgs": func() string { return "zeroArgs" },
		"oneArg":   func(a string) string { return "oneArg=" + a },
		"dddArg": func(a int, b ...string) string {
			return fmt.Sprintf("%d=<%s>", a, strings.Join(b, "+"))
		},
		"echo": func(a any) any { return a },
		"upper": strings.ToUpper,
		"join":  strings.Join,
		"fail":  func() (string, error) { return "", errors.New("it failed") },
	}
}

type result struct {
	T     string `json:"t"`
	Out   string `json:"out"`
	Err   string `json:"err"`
	Parse bool   `json:"parse_error"`
}

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var text string
		if err := json.Unmarshal([]byte(line), &text); err != nil {
			fmt.Fprintln(os.Stderr, "bad case:", line, err)
			os.Exit(1)
		}
		r := result{T: text}
		tmpl, err := template.New("").Funcs(funcs()).Parse(text)
		if err != nil {
			r.Err = err.Error()
			r.Parse = true
		} else {
			var b strings.Builder
			err = tmpl.Execute(&b, data())
			r.Out = b.String()
			if err != nil {
				r.Err = err.Error()
			}
		}
		enc.Encode(r)
	}
}
