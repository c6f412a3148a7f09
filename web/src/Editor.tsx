import { forwardRef, useEffect, useImperativeHandle, useRef } from 'react';
import { Compartment, EditorState, Prec, type Extension } from '@codemirror/state';
import {
  EditorView,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  highlightSpecialChars,
  keymap,
  lineNumbers,
} from '@codemirror/view';
import { defaultKeymap, history, historyKeymap, indentWithTab, isolateHistory } from '@codemirror/commands';
import { HighlightStyle, bracketMatching, indentOnInput, indentUnit, syntaxHighlighting } from '@codemirror/language';
import { tags as t } from '@lezer/highlight';
import { languageInfo, languageKey } from './languages';

// Colours come from CSS variables (styles.css), so switching the page theme restyles the editor
// without reconfiguring it.
const highlight = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.operatorKeyword, t.definitionKeyword, t.moduleKeyword, t.processingInstruction, t.meta], color: 'var(--tok-keyword)' },
  { tag: [t.string, t.special(t.string)], color: 'var(--tok-string)' },
  { tag: [t.number, t.bool, t.null], color: 'var(--tok-number)' },
  { tag: [t.comment, t.lineComment], color: 'var(--tok-comment)', fontStyle: 'italic' },
  { tag: [t.function(t.variableName), t.function(t.propertyName), t.definition(t.function(t.variableName))], color: 'var(--tok-function)' },
  { tag: [t.className, t.definition(t.className), t.typeName, t.namespace], color: 'var(--tok-class)' },
  { tag: [t.self, t.standard(t.variableName), t.atom, t.special(t.variableName)], color: 'var(--tok-builtin)' },
  { tag: [t.operator, t.punctuation, t.bracket], color: 'var(--tok-punct)' },
  { tag: t.invalid, color: 'var(--danger)' },
]);

const chrome = EditorView.theme({
  '&': { height: '100%', fontSize: '14px', backgroundColor: 'var(--editor-bg)', color: 'var(--text)' },
  '.cm-scroller': { fontFamily: 'var(--mono)', lineHeight: '1.5' },
  '.cm-content': { caretColor: 'var(--text)', padding: '8px 0' },
  '.cm-cursor, .cm-dropCursor': { borderLeftColor: 'var(--text)' },
  '.cm-gutters': { backgroundColor: 'var(--editor-gutter)', color: 'var(--muted)', border: 'none', borderRight: '1px solid var(--border)' },
  '.cm-activeLine': { backgroundColor: 'var(--editor-active)' },
  '.cm-activeLineGutter': { backgroundColor: 'var(--editor-active)', color: 'var(--text)' },
  '&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection': { backgroundColor: 'var(--editor-selection) !important' },
  '&.cm-focused .cm-matchingBracket': { backgroundColor: 'var(--editor-bracket)', outline: 'none' },
  '&.cm-focused': { outline: 'none' },
});

// Typing over a selection is done here, not by the browser. Left to Chrome's contenteditable
// editing, it deletes the selection and keeps the deleted text's colour as "typing style" by
// writing style="color: rgb(...)" onto the line (CodeMirror then removes it). The page's
// Content-Security-Policy allows no inline style, so that write is blocked and logged as a
// style-src-attr violation. Replacing the selection with a transaction never lets the browser
// touch the DOM; the "input.type" event keeps indentOnInput and undo grouping as for typing.
// Composition (IME, dead keys) is left to CodeMirror, which must see it happen natively.
const typeOverSelection = EditorView.domEventHandlers({
  beforeinput(event, view) {
    if (event.inputType !== 'insertText' || event.data == null || event.isComposing || view.composing) return false;
    if (view.state.readOnly || view.state.selection.ranges.every((r) => r.empty)) return false;
    event.preventDefault();
    view.dispatch(view.state.replaceSelection(event.data), { scrollIntoView: true, userEvent: 'input.type' });
    return true;
  },
});

export interface EditorHandle {
  /** Replaces the text as one undoable change (Ctrl/Cmd+Z brings the old text back). */
  setValue(text: string): void;
  focus(): void;
}

interface Props {
  initialValue: string;
  /** A Runtime's language name (and its aliases), which picks the mode; unknown ones are plain text. */
  language: string;
  aliases?: readonly string[];
  onChange(value: string): void;
  onRun(): void;
}

// What depends on the language: the grammar, the indent unit and the content's label.
function languageExtensions(language: string, aliases: readonly string[], mode: Extension): Extension {
  const info = languageInfo(language, aliases);
  const indent = info?.indent ?? 4;
  return [
    mode,
    indentUnit.of(indent === 0 ? '\t' : ' '.repeat(indent)),
    EditorView.contentAttributes.of({ 'aria-label': `${info?.label ?? language} code` }),
  ];
}

export const Editor = forwardRef<EditorHandle, Props>(function Editor({ initialValue, language, aliases = [], onChange, onRun }, ref) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const lang = useRef(new Compartment());
  // The latest callbacks, so the editor (made once) never calls stale ones.
  const cb = useRef({ onChange, onRun });
  cb.current = { onChange, onRun };

  useEffect(() => {
    // The editor lives in a shadow root. CodeMirror puts its styles into a <style> element in a
    // document, which a Content-Security-Policy without style-src 'unsafe-inline' blocks; in a
    // shadow root it uses constructed style sheets (adoptedStyleSheets), which such a policy
    // allows. CSS variables (the theme's colours) are inherited into the shadow root.
    const el = host.current!;
    const shadow = el.shadowRoot ?? el.attachShadow({ mode: 'open' });
    const parent = document.createElement('div');
    parent.style.height = '100%';
    shadow.replaceChildren(parent);
    const v = new EditorView({
      parent,
      root: shadow,
      state: EditorState.create({
        doc: initialValue,
        extensions: [
          lineNumbers(),
          highlightActiveLineGutter(),
          highlightSpecialChars(),
          history(),
          drawSelection(),
          indentOnInput(),
          bracketMatching(),
          highlightActiveLine(),
          // The mode is loaded on demand (the effect below); until then, plain text.
          lang.current.of(languageExtensions(language, aliases, [])),
          syntaxHighlighting(highlight),
          chrome,
          typeOverSelection,
          Prec.highest(
            keymap.of([
              {
                key: 'Mod-Enter',
                preventDefault: true,
                run: () => {
                  cb.current.onRun();
                  return true;
                },
              },
            ]),
          ),
          keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
          EditorState.tabSize.of(4),
          EditorView.contentAttributes.of({ 'data-testid': 'code-input' }),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) cb.current.onChange(u.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = v;
    return () => {
      v.destroy();
      view.current = null;
    };
    // The editor is created once; later content comes through setValue.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // Load the language's mode and put it in; a later language wins over a slower earlier load.
  // data-mode on the host names the mode in place ("" while loading, "plain" for none) and
  // data-language the language it was put in for: tests wait for them.
  const aliasKey = aliases.join(',');
  useEffect(() => {
    const v = view.current;
    const el = host.current;
    if (!v || !el) return;
    let current = true;
    const info = languageInfo(language, aliases);
    el.dataset.mode = '';
    const apply = (mode: Extension, name: string) => {
      if (!current || view.current !== v) return;
      v.dispatch({ effects: lang.current.reconfigure(languageExtensions(language, aliases, mode)) });
      el.dataset.mode = name;
      el.dataset.language = language;
    };
    if (!info) {
      apply([], 'plain');
    } else {
      info.mode().then(
        (mode) => apply(mode, languageKey(language, aliases) ?? 'plain'),
        // A chunk that failed to load (the service was redeployed with new file names, say)
        // leaves the code editable as plain text.
        () => apply([], 'plain'),
      );
    }
    return () => {
      current = false;
    };
    // aliases is compared by its contents (aliasKey), not by identity.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [language, aliasKey]);

  useImperativeHandle(ref, () => ({
    setValue(text: string) {
      const v = view.current;
      if (!v) return;
      // Its own undo step, never merged with typing just before or after it.
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: text }, annotations: isolateHistory.of('full') });
    },
    focus() {
      view.current?.focus();
    },
  }));

  return <div className="editor" ref={host} data-testid="editor" />;
});
