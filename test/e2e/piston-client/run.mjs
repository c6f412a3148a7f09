// Runs programs through coderun's Piston API v2 with the npm client piston-client, the way
// its users call it, and prints what the client returned as one JSON object on stdout:
//   node run.mjs <server URL> <language>...
// For each language: a hello world that prints its arguments (piston-client sends 1 2 3
// unless told otherwise) and the line it reads from stdin, and, for C++, a program that
// does not compile. test/e2e/piston_test.go checks the answers.
import piston from 'piston-client';

const programs = {
  python: {
    hello: 'import sys\nprint("Hello, World!", *sys.argv[1:])\nprint(input())\n',
  },
  javascript: {
    hello:
      'const lines = require("fs").readFileSync(0, "utf8").split("\\n");\n' +
      'console.log("Hello, World!", ...process.argv.slice(2));\nconsole.log(lines[0]);\n',
  },
  cpp: {
    hello:
      '#include <iostream>\n#include <string>\n\nint main(int argc, char **argv) {\n' +
      '    std::cout << "Hello, World!";\n    for (int i = 1; i < argc; i++) std::cout << " " << argv[i];\n' +
      '    std::string line;\n    std::getline(std::cin, line);\n    std::cout << "\\n" << line << "\\n";\n}\n',
    compileError: 'int main() {\n    return undefined_variable\n}\n',
  },
};

const [server, ...languages] = process.argv.slice(2);
if (!server || languages.length === 0) {
  console.error('usage: node run.mjs <server URL> <language>...');
  process.exit(2);
}
const client = piston({ server });
const out = { runtimes: await client.runtimes(), results: {} };
for (const language of languages) {
  const p = programs[language];
  if (!p) {
    console.error(`no program for ${language}`);
    process.exit(2);
  }
  const started = Date.now();
  const result = { hello: await client.execute(language, p.hello, { stdin: 'from stdin' }) };
  if (p.compileError) {
    result.compileError = await client.execute(language, p.compileError);
  }
  result.millis = Date.now() - started;
  out.results[language] = result;
}
console.log(JSON.stringify(out));
