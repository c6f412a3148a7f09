//go:build e2e

package e2e

// The shipped runtimes' test programs: one entry per language image (images/<name>/, the
// chart's runtimes.available.<name>), each with a hello world, a program that copies its
// stdin to its stdout, one that exits with code 3, and for compiled languages one that does
// not compile. The native API's test (runtimes_test.go) and the Piston and Judge0 tests run
// every entry through their own API, so a language added to the chart gets its row here.

// runtimeCase is one shipped runtime's programs and what they must print.
type runtimeCase struct {
	// Name is the key in the chart's runtimes.available and the image's name
	// (localhost/coderun-<Name>).
	Name string
	// Language is what clients ask for (spec.language, "language" in the APIs).
	Language string
	// Version is the version the chart ships (the Runtime's spec.version), and VersionRange
	// a semver range that a client would send and that it satisfies.
	Version      string
	VersionRange string
	// Judge0ID is the Runtime's judge0LanguageID; 0 when Judge0 has no id for the language.
	Judge0ID int

	// Hello prints helloStdout. Echo copies all of its stdin (echoStdin) to stdout. Exit3
	// prints nothing and exits with code 3.
	Hello string
	Echo  string
	Exit3 string
	// CompileError does not compile, and the compiler's output contains CompileErrorOutput.
	// Empty for the languages without a compile step (interpreted, or compiled in memory at
	// run time like Java's source launch, whose errors are the run's stderr and exit code 1).
	CompileError       string
	CompileErrorOutput string
}

// Compiled says whether the runtime has a compile step (a CodeRun's status.result.compile,
// reason CompileError).
func (c runtimeCase) Compiled() bool { return c.CompileError != "" }

const (
	// helloStdout is what every Hello program prints.
	helloStdout = "Hello, World!\n"
	// echoStdin is the stdin of every Echo program, which must print it unchanged: two
	// lines, one with multi-byte UTF-8, ending with a newline.
	echoStdin = "line one\nzwei: ünïcödé ✓\n"
)

// runtimeCases lists every shipped runtime, in the order of images/ (alphabetical).
var runtimeCases = []runtimeCase{
	{
		Name: "awk", Language: "awk", Version: "5.2.1", VersionRange: "5.x",
		Hello: `BEGIN { print "Hello, World!" }`,
		Echo:  `{ print }`,
		Exit3: `BEGIN { exit 3 }`,
	},
	{
		Name: "bash", Language: "bash", Version: "5.2.37", VersionRange: "5", Judge0ID: 46,
		Hello: `echo "Hello, World!"`,
		Echo:  `cat`,
		Exit3: `exit 3`,
	},
	{
		Name: "c", Language: "c", Version: "14.2.0", VersionRange: ">=14", Judge0ID: 103,
		Hello:              "#include <stdio.h>\n\nint main(void) {\n    printf(\"Hello, World!\\n\");\n    return 0;\n}\n",
		Echo:               "#include <stdio.h>\n\nint main(void) {\n    int c;\n    while ((c = getchar()) != EOF) putchar(c);\n    return 0;\n}\n",
		Exit3:              "int main(void) { return 3; }\n",
		CompileError:       "int main(void) {\n    return undefined_variable;\n}\n",
		CompileErrorOutput: "undefined_variable",
	},
	{
		Name: "cpp", Language: "cpp", Version: "14.2.0", VersionRange: "^14.2", Judge0ID: 105,
		Hello: "#include <iostream>\n\nint main() {\n    std::cout << \"Hello, World!\" << std::endl;\n}\n",
		Echo:  "#include <iostream>\n\nint main() {\n    std::cout << std::cin.rdbuf();\n}\n",
		Exit3: "int main() { return 3; }\n",
		// A syntax error (the "done when": its messages in compile).
		CompileError:       "#include <iostream>\n\nint main() {\n    std::cout << \"missing semicolon\" << std::endl\n}\n",
		CompileErrorOutput: "error: expected",
	},
	{
		Name: "d", Language: "d", Version: "14.2.0", VersionRange: "14", Judge0ID: 56,
		Hello:              "import std.stdio;\n\nvoid main() {\n    writeln(\"Hello, World!\");\n}\n",
		Echo:               "import std.stdio;\n\nvoid main() {\n    foreach (line; stdin.byLine(KeepTerminator.yes)) write(line);\n}\n",
		Exit3:              "int main() {\n    return 3;\n}\n",
		CompileError:       "void main() {\n    int x = \"text\";\n}\n",
		CompileErrorOutput: "cannot implicitly convert",
	},
	{
		Name: "elixir", Language: "elixir", Version: "1.18.3", VersionRange: "~1.18", Judge0ID: 57,
		Hello: `IO.puts("Hello, World!")`,
		Echo:  `IO.write(IO.read(:stdio, :eof))`,
		Exit3: `System.halt(3)`,
	},
	{
		Name: "erlang", Language: "erlang", Version: "27.3.4", VersionRange: "27", Judge0ID: 58,
		Hello: "#!/usr/bin/env escript\n\nmain(_) ->\n    io:format(\"Hello, World!~n\").\n",
		Echo: "#!/usr/bin/env escript\n\nmain(_) ->\n    ok = io:setopts(standard_io, [binary]),\n    echo().\n\n" +
			"echo() ->\n    case io:get_line(\"\") of\n        eof -> ok;\n        Line -> io:put_chars(Line), echo()\n    end.\n",
		Exit3: "#!/usr/bin/env escript\n\nmain(_) ->\n    halt(3).\n",
	},
	{
		Name: "fortran", Language: "fortran", Version: "14.2.0", VersionRange: "14.x", Judge0ID: 59,
		Hello: "program hello\n  print '(a)', 'Hello, World!'\nend program hello\n",
		Echo: "program echo\n  implicit none\n  character(len=4096) :: line\n  integer :: ios\n  do\n" +
			"    read (*, '(a)', iostat=ios) line\n    if (ios /= 0) exit\n    write (*, '(a)') trim(line)\n  end do\nend program echo\n",
		Exit3:              "program exit3\n  call exit(3)\nend program exit3\n",
		CompileError:       "program bad\n  integer :: x\n  x = 'text'\nend program bad\n",
		CompileErrorOutput: "Cannot convert",
	},
	{
		Name: "go", Language: "go", Version: "1.24.4", VersionRange: "^1.24", Judge0ID: 107,
		Hello:              "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"Hello, World!\")\n}\n",
		Echo:               "package main\n\nimport (\n\t\"io\"\n\t\"os\"\n)\n\nfunc main() {\n\tio.Copy(os.Stdout, os.Stdin)\n}\n",
		Exit3:              "package main\n\nimport \"os\"\n\nfunc main() {\n\tos.Exit(3)\n}\n",
		CompileError:       "package main\n\nfunc main() {\n\tx := 1\n}\n",
		CompileErrorOutput: "declared and not used",
	},
	{
		Name: "java", Language: "java", Version: "21.0.13", VersionRange: "21", Judge0ID: 91,
		Hello: "public class Main {\n    public static void main(String[] args) {\n        System.out.println(\"Hello, World!\");\n    }\n}\n",
		Echo:  "public class Main {\n    public static void main(String[] args) throws Exception {\n        System.in.transferTo(System.out);\n        System.out.flush();\n    }\n}\n",
		Exit3: "public class Main {\n    public static void main(String[] args) {\n        System.exit(3);\n    }\n}\n",
	},
	{
		Name: "javascript", Language: "javascript", Version: "20.19.2", VersionRange: "20.x", Judge0ID: 97,
		Hello: `console.log("Hello, World!");`,
		Echo:  `process.stdout.write(require("fs").readFileSync(0, "utf8"));`,
		Exit3: `process.exit(3);`,
	},
	{
		Name: "kotlin", Language: "kotlin", Version: "1.3.31", VersionRange: "1.3", Judge0ID: 78,
		Hello:              "fun main() {\n    println(\"Hello, World!\")\n}\n",
		Echo:               "fun main() {\n    System.`in`.copyTo(System.out)\n    System.out.flush()\n}\n",
		Exit3:              "import kotlin.system.exitProcess\n\nfun main() {\n    exitProcess(3)\n}\n",
		CompileError:       "fun main() {\n    val x: Int = \"text\"\n}\n",
		CompileErrorOutput: "type mismatch",
	},
	{
		Name: "lisp", Language: "lisp", Version: "2.5.2", VersionRange: "2", Judge0ID: 55,
		Hello: `(write-line "Hello, World!")`,
		Echo:  "(loop for line = (read-line *standard-input* nil)\n      while line do (write-line line))\n",
		Exit3: `(sb-ext:exit :code 3)`,
	},
	{
		Name: "lua", Language: "lua", Version: "5.4.7", VersionRange: "5.4", Judge0ID: 64,
		Hello: `print("Hello, World!")`,
		Echo:  `io.write(io.read("a"))`,
		Exit3: `os.exit(3)`,
	},
	{
		Name: "ocaml", Language: "ocaml", Version: "5.3.0", VersionRange: ">=5", Judge0ID: 65,
		Hello:              "let () = print_endline \"Hello, World!\"\n",
		Echo:               "let () = print_string (In_channel.input_all stdin)\n",
		Exit3:              "let () = exit 3\n",
		CompileError:       "let () = print_endline 42\n",
		CompileErrorOutput: "Error",
	},
	{
		Name: "pascal", Language: "pascal", Version: "3.2.2", VersionRange: "3.2", Judge0ID: 67,
		Hello: "program Hello;\nbegin\n  writeln('Hello, World!');\nend.\n",
		Echo: "program Echo;\n{$H+}\nvar\n  line: string;\nbegin\n  while not eof do\n  begin\n" +
			"    readln(line);\n    writeln(line);\n  end;\nend.\n",
		Exit3:              "program Exit3;\nbegin\n  halt(3);\nend.\n",
		CompileError:       "program Bad;\nbegin\n  writeln(undefinedVariable);\nend.\n",
		CompileErrorOutput: "Identifier not found",
	},
	{
		Name: "perl", Language: "perl", Version: "5.40.1", VersionRange: "5", Judge0ID: 85,
		Hello: `print "Hello, World!\n";`,
		Echo:  "local $/;\nprint <STDIN>;\n",
		Exit3: `exit 3;`,
	},
	{
		Name: "php", Language: "php", Version: "8.4.27", VersionRange: "8", Judge0ID: 98,
		Hello: "<?php\necho \"Hello, World!\\n\";\n",
		Echo:  "<?php\necho file_get_contents('php://stdin');\n",
		Exit3: "<?php\nexit(3);\n",
	},
	{
		Name: "prolog", Language: "prolog", Version: "9.2.9", VersionRange: "9", Judge0ID: 69,
		Hello: ":- initialization(main, main).\n\nmain :- format(\"Hello, World!~n\").\n",
		Echo:  ":- initialization(main, main).\n\nmain :- read_string(user_input, _, S), write(S).\n",
		Exit3: ":- initialization(main, main).\n\nmain :- halt(3).\n",
	},
	{
		Name: "python", Language: "python", Version: "3.13.5", VersionRange: "3.x", Judge0ID: 109,
		Hello: `print("Hello, World!")`,
		Echo:  "import sys\nsys.stdout.write(sys.stdin.read())\n",
		Exit3: "import sys\nsys.exit(3)\n",
	},
	{
		Name: "r", Language: "r", Version: "4.5.0", VersionRange: "4", Judge0ID: 99,
		Hello: `cat("Hello, World!\n")`,
		Echo:  "lines <- readLines(file(\"stdin\"))\ncat(paste0(lines, \"\\n\"), sep = \"\")\n",
		Exit3: `quit(status = 3)`,
	},
	{
		Name: "racket", Language: "racket", Version: "8.16.0", VersionRange: "8",
		Hello: "#lang racket/base\n(displayln \"Hello, World!\")\n",
		Echo:  "#lang racket/base\n(require racket/port)\n(copy-port (current-input-port) (current-output-port))\n",
		Exit3: "#lang racket/base\n(exit 3)\n",
	},
	{
		Name: "ruby", Language: "ruby", Version: "3.3.8", VersionRange: "3", Judge0ID: 72,
		Hello: `puts "Hello, World!"`,
		Echo:  `$stdout.write($stdin.read)`,
		Exit3: `exit 3`,
	},
	{
		Name: "rust", Language: "rust", Version: "1.85.1", VersionRange: "^1.80", Judge0ID: 108,
		Hello: "fn main() {\n    println!(\"Hello, World!\");\n}\n",
		Echo: "use std::io::{self, Read, Write};\n\nfn main() {\n    let mut s = String::new();\n" +
			"    io::stdin().read_to_string(&mut s).unwrap();\n    io::stdout().write_all(s.as_bytes()).unwrap();\n}\n",
		Exit3:              "fn main() {\n    std::process::exit(3);\n}\n",
		CompileError:       "fn main() {\n    let x: i32 = \"text\";\n}\n",
		CompileErrorOutput: "mismatched types",
	},
	{
		Name: "sqlite", Language: "sqlite", Version: "3.46.1", VersionRange: "3", Judge0ID: 82,
		Hello: `SELECT 'Hello, World!';`,
		// The whole of stdin as one row of one column (ASCII mode splits on 0x1E and 0x1F),
		// printed without the newline list mode adds.
		Echo:  "CREATE TABLE input(text);\n.import --ascii /dev/stdin input\n.separator '' ''\nSELECT text FROM input;\n",
		Exit3: `.exit 3`,
	},
	{
		Name: "typescript", Language: "typescript", Version: "4.9.5", VersionRange: "4", Judge0ID: 94,
		Hello:              "const greeting: string = \"Hello, World!\";\nconsole.log(greeting);\n",
		Echo:               "import * as fs from \"fs\";\n\nprocess.stdout.write(fs.readFileSync(0, \"utf8\"));\n",
		Exit3:              "process.exit(3);\n",
		CompileError:       "const x: number = \"text\";\n",
		CompileErrorOutput: "TS2322",
	},
}
