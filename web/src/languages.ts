// What the page knows about each language: the editor's mode and a starter program. Which
// languages exist is the cluster's business (GET /runtimes lists its Runtimes); this table
// only dresses them up, so a Runtime added with kubectl apply shows up in the picker even if
// the page has never heard of it (as plain text, with an empty editor).
//
// Modes are loaded on demand (dynamic import): Vite puts each grammar in its own file under
// assets/, so the page loads only Python's until another language is picked.

import { StreamLanguage, type StreamParser } from '@codemirror/language';
import type { Extension } from '@codemirror/state';

export interface LanguageInfo {
  /** The name people read, e.g. "C++". */
  label: string;
  /** A hello world that reads a name from stdin where that is natural. */
  starter: string;
  /** Loads the editor's language support. */
  mode(): Promise<Extension>;
  /** Spaces per indent the starter uses (Go's gofmt uses tabs, shown 4 wide). */
  indent?: number;
}

// Legacy (CodeMirror 5) modes, ported as stream parsers: for the languages without a Lezer
// grammar of their own.
async function legacy(load: () => Promise<StreamParser<unknown>>): Promise<Extension> {
  return StreamLanguage.define(await load());
}

const clikeC = () => legacy(async () => (await import('@codemirror/legacy-modes/mode/clike')).c);

// Keys are Runtime language names as the images ship them; ALIASES maps other names here.
export const LANGUAGES: Record<string, LanguageInfo> = {
  python: {
    label: 'Python',
    mode: async () => (await import('@codemirror/lang-python')).python(),
    starter: `import sys

name = sys.stdin.readline().strip() or "World"
print(f"Hello, {name}!")
`,
  },
  c: {
    label: 'C',
    mode: async () => (await import('@codemirror/lang-cpp')).cpp(),
    starter: `#include <stdio.h>
#include <string.h>

int main(void) {
    char name[100];
    if (!fgets(name, sizeof name, stdin) || name[0] == '\\n') {
        strcpy(name, "World");
    }
    name[strcspn(name, "\\n")] = '\\0';
    printf("Hello, %s!\\n", name);
    return 0;
}
`,
  },
  cpp: {
    label: 'C++',
    mode: async () => (await import('@codemirror/lang-cpp')).cpp(),
    starter: `#include <iostream>
#include <string>

int main() {
    std::string name;
    if (!std::getline(std::cin, name) || name.empty()) {
        name = "World";
    }
    std::cout << "Hello, " << name << "!" << std::endl;
    return 0;
}
`,
  },
  go: {
    label: 'Go',
    mode: async () => (await import('@codemirror/lang-go')).go(),
    indent: 0,
    starter: `package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

func main() {
	line, _ := bufio.NewReader(os.Stdin).ReadString('\\n')
	name := strings.TrimSpace(line)
	if name == "" {
		name = "World"
	}
	fmt.Printf("Hello, %s!\\n", name)
}
`,
  },
  rust: {
    label: 'Rust',
    mode: async () => (await import('@codemirror/lang-rust')).rust(),
    starter: `use std::io;

fn main() {
    let mut line = String::new();
    io::stdin().read_line(&mut line).expect("reading stdin");
    let name = match line.trim() {
        "" => "World",
        name => name,
    };
    println!("Hello, {}!", name);
}
`,
  },
  java: {
    label: 'Java',
    mode: async () => (await import('@codemirror/lang-java')).java(),
    starter: `import java.util.Scanner;

public class Main {
    public static void main(String[] args) {
        Scanner in = new Scanner(System.in);
        String name = in.hasNextLine() ? in.nextLine().trim() : "";
        if (name.isEmpty()) {
            name = "World";
        }
        System.out.println("Hello, " + name + "!");
    }
}
`,
  },
  kotlin: {
    label: 'Kotlin',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/clike')).kotlin),
    starter: `fun main() {
    val name = readLine()?.trim().orEmpty().ifEmpty { "World" }
    println("Hello, $name!")
}
`,
  },
  javascript: {
    label: 'JavaScript',
    mode: async () => (await import('@codemirror/lang-javascript')).javascript(),
    indent: 2,
    starter: `const fs = require('fs');

const name = fs.readFileSync(0, 'utf8').split('\\n')[0].trim() || 'World';
console.log(\`Hello, \${name}!\`);
`,
  },
  // The shipped Runtime compiles with Node's type declarations (--types node), so fs type-checks.
  typescript: {
    label: 'TypeScript',
    mode: async () => (await import('@codemirror/lang-javascript')).javascript({ typescript: true }),
    indent: 2,
    starter: `import { readFileSync } from 'fs';

function greet(name: string): string {
  return \`Hello, \${name}!\`;
}

const line: string = readFileSync(0, 'utf8').split('\\n')[0];
console.log(greet(line.trim() || 'World'));
`,
  },
  ruby: {
    label: 'Ruby',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/ruby')).ruby),
    indent: 2,
    starter: `name = ($stdin.gets || '').strip
name = 'World' if name.empty?
puts "Hello, #{name}!"
`,
  },
  php: {
    label: 'PHP',
    mode: async () => (await import('@codemirror/lang-php')).php(),
    starter: `<?php
$name = trim(fgets(STDIN) ?: '');
if ($name === '') {
    $name = 'World';
}
echo "Hello, $name!\\n";
`,
  },
  perl: {
    label: 'Perl',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/perl')).perl),
    starter: `use strict;
use warnings;

my $name = <STDIN> // '';
chomp $name;
$name = 'World' if $name eq '';
print "Hello, $name!\\n";
`,
  },
  lua: {
    label: 'Lua',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/lua')).lua),
    starter: `local name = io.read("*l") or ""
if name == "" then
    name = "World"
end
print("Hello, " .. name .. "!")
`,
  },
  bash: {
    label: 'Bash',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/shell')).shell),
    starter: `read -r name
echo "Hello, \${name:-World}!"
`,
  },
  r: {
    label: 'R',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/r')).r),
    indent: 2,
    starter: `con <- file("stdin")
line <- readLines(con, n = 1, warn = FALSE)
close(con)
name <- if (length(line) == 0 || trimws(line) == "") "World" else trimws(line)
cat("Hello, ", name, "!\\n", sep = "")
`,
  },
  sqlite3: {
    label: 'SQLite',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/sql')).sqlite),
    starter: `CREATE TABLE greeting (name TEXT);
INSERT INTO greeting VALUES ('World'), ('SQLite');
SELECT 'Hello, ' || name || '!' FROM greeting;
`,
  },
  pascal: {
    label: 'Pascal',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/pascal')).pascal),
    indent: 2,
    starter: `program Hello;
var
  name: string;
begin
  if eof(input) then name := '' else readln(name);
  if name = '' then name := 'World';
  writeln('Hello, ', name, '!');
end.
`,
  },
  fortran: {
    label: 'Fortran',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/fortran')).fortran),
    indent: 2,
    starter: `program hello
  implicit none
  character(len=100) :: name
  integer :: ios

  read (*, '(A)', iostat=ios) name
  if (ios /= 0 .or. len_trim(name) == 0) name = 'World'
  print '(3A)', 'Hello, ', trim(name), '!'
end program hello
`,
  },
  ocaml: {
    label: 'OCaml',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/mllike')).oCaml),
    indent: 2,
    starter: `let () =
  let name = try String.trim (input_line stdin) with End_of_file -> "" in
  let name = if name = "" then "World" else name in
  Printf.printf "Hello, %s!\\n" name
`,
  },
  // escript ignores the first line (meant for #!), so the program starts on the second.
  erlang: {
    label: 'Erlang',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/erlang')).erlang),
    starter: `#!/usr/bin/env escript

main(_) ->
    Name = case io:get_line("") of
        Line when is_list(Line) ->
            case string:trim(Line) of
                "" -> "World";
                Trimmed -> Trimmed
            end;
        _ -> "World"
    end,
    io:format("Hello, ~s!~n", [Name]).
`,
  },
  // No Elixir mode exists for CodeMirror 6; Ruby's is the closest in look (do/end, #{}).
  elixir: {
    label: 'Elixir',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/ruby')).ruby),
    indent: 2,
    starter: `name =
  case IO.gets("") do
    line when is_binary(line) -> String.trim(line)
    _ -> ""
  end

IO.puts("Hello, #{if name == "", do: "World", else: name}!")
`,
  },
  commonlisp: {
    label: 'Common Lisp',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/commonlisp')).commonLisp),
    indent: 2,
    starter: `(let* ((line (read-line *standard-input* nil ""))
       (name (string-trim " " line)))
  (format t "Hello, ~a!~%" (if (string= name "") "World" name)))
`,
  },
  // No Prolog mode exists for CodeMirror 6; Erlang's grew from Prolog's syntax.
  prolog: {
    label: 'Prolog',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/erlang')).erlang),
    starter: `:- initialization(main, main).

main :-
    read_line_to_string(user_input, Line),
    (   ( Line == end_of_file ; Line == "" )
    ->  Name = "World"
    ;   Name = Line
    ),
    format("Hello, ~w!~n", [Name]).
`,
  },
  racket: {
    label: 'Racket',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/scheme')).scheme),
    indent: 2,
    starter: `#lang racket/base

(define line (read-line))
(define name (if (or (eof-object? line) (string=? line "")) "World" line))
(printf "Hello, ~a!\\n" name)
`,
  },
  // No awk mode exists; C's highlights its braces, strings, numbers and keywords.
  awk: {
    label: 'AWK',
    mode: clikeC,
    starter: `NR == 1 { name = $0 }
END {
    if (name == "") name = "World"
    print "Hello, " name "!"
}
`,
  },
  d: {
    label: 'D',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/d')).d),
    starter: `import std.stdio;
import std.string;

void main()
{
    auto name = readln().strip();
    if (name.length == 0) {
        name = "World";
    }
    writeln("Hello, ", name, "!");
}
`,
  },
  haskell: {
    label: 'Haskell',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/haskell')).haskell),
    indent: 2,
    starter: `import System.IO

main :: IO ()
main = do
  eof <- isEOF
  line <- if eof then return "" else getLine
  let name = if null line then "World" else line
  putStrLn ("Hello, " ++ name ++ "!")
`,
  },
  scheme: {
    label: 'Scheme',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/scheme')).scheme),
    indent: 2,
    starter: `(let ((line (read-line)))
  (display (string-append "Hello, " (if (or (eof-object? line) (string=? line "")) "World" line) "!"))
  (newline))
`,
  },
  tcl: {
    label: 'Tcl',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/tcl')).tcl),
    starter: `set name [string trim [gets stdin]]
if {$name eq ""} { set name World }
puts "Hello, $name!"
`,
  },
  groovy: {
    label: 'Groovy',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/groovy')).groovy),
    starter: `def name = System.in.newReader().readLine()?.trim() ?: 'World'
println "Hello, $name!"
`,
  },
  clojure: {
    label: 'Clojure',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/clojure')).clojure),
    indent: 2,
    starter: `(let [line (or (read-line) "")
      name (if (= "" (clojure.string/trim line)) "World" (clojure.string/trim line))]
  (println (str "Hello, " name "!")))
`,
  },
  csharp: {
    label: 'C#',
    mode: () => legacy(async () => (await import('@codemirror/legacy-modes/mode/clike')).csharp),
    starter: `using System;

class Program
{
    static void Main()
    {
        string name = (Console.ReadLine() ?? "").Trim();
        if (name == "") name = "World";
        Console.WriteLine($"Hello, {name}!");
    }
}
`,
  },
};

// Other names a Runtime may go by (its language or one of its aliases), mapped to a key of
// LANGUAGES. The language name is tried before any alias, so a clash between two Runtimes'
// aliases (pl for Perl and for Prolog) never wins over a name.
const ALIASES: Record<string, string> = {
  python3: 'python',
  py: 'python',
  'c++': 'cpp',
  'g++': 'cpp',
  cc: 'cpp',
  gcc: 'c',
  golang: 'go',
  rs: 'rust',
  kt: 'kotlin',
  js: 'javascript',
  node: 'javascript',
  nodejs: 'javascript',
  'node-js': 'javascript',
  ts: 'typescript',
  rb: 'ruby',
  pl: 'perl',
  sh: 'bash',
  dash: 'bash',
  rscript: 'r',
  sqlite: 'sqlite3',
  sql: 'sqlite3',
  fpc: 'pascal',
  'free-pascal': 'pascal',
  f90: 'fortran',
  gfortran: 'fortran',
  ml: 'ocaml',
  erl: 'erlang',
  escript: 'erlang',
  ex: 'elixir',
  exs: 'elixir',
  lisp: 'commonlisp',
  'common-lisp': 'commonlisp',
  cl: 'commonlisp',
  sbcl: 'commonlisp',
  swipl: 'prolog',
  'swi-prolog': 'prolog',
  rkt: 'racket',
  gawk: 'awk',
  gdc: 'd',
  dlang: 'd',
  hs: 'haskell',
  ghc: 'haskell',
  guile: 'scheme',
  cs: 'csharp',
  'c#': 'csharp',
  clj: 'clojure',
};

/** The LANGUAGES key of a Runtime's language (or, failing that, of one of its aliases); null when the page knows none. */
export function languageKey(language: string, aliases: readonly string[] = []): string | null {
  for (const name of [language, ...aliases]) {
    const n = name.trim().toLowerCase();
    if (n in LANGUAGES) return n;
    if (n in ALIASES) return ALIASES[n];
  }
  return null;
}

/** What the page knows of a language; null when nothing (it is then plain text with no starter). */
export function languageInfo(language: string, aliases: readonly string[] = []): LanguageInfo | null {
  const key = languageKey(language, aliases);
  return key ? LANGUAGES[key] : null;
}

/** The starter program of a language, or "" when the page has none. */
export function starterFor(language: string, aliases: readonly string[] = []): string {
  return languageInfo(language, aliases)?.starter ?? '';
}
