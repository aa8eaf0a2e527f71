// coordctl's line editor: a small editor on a raw-mode terminal (termios),
// ours rather than a library's because the shell must print a watch event
// that arrives while a line is half typed — above the line, then redraw the
// prompt and the partial line intact — which needs the editor's state and
// the terminal under one lock.
//
// EditBuffer is the pure editing state (keys -> text and cursor), tested
// without a terminal. LineEditor reads keys from a terminal fd, keeps the
// history list (up/down), completes with a callback (tab) and is also the
// shell's Console, so output from any thread goes through its lock.
//
// Keys: left/right, home/end, backspace, delete, ctrl-a/e (home/end),
// ctrl-b/f (left/right), ctrl-k/u (kill to end/start), ctrl-w (kill word),
// ctrl-l (clear screen), ctrl-c (drop the line), ctrl-d (delete, or end of
// input on an empty line), up/down and ctrl-p/n (history), tab (complete).
//
// Thread safety: read_line() from one thread; out(), err(), async() from any.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/cli/console.h"

namespace coord::cli {

class EditBuffer {
 public:
  const std::string& text() const { return text_; }
  std::size_t cursor() const { return cursor_; }  // a byte offset at a character boundary

  void set(std::string text);  // cursor at the end
  void insert(std::string_view s);
  void backspace();
  void erase();  // the character under the cursor
  void left();
  void right();
  void home() { cursor_ = 0; }
  void end() { cursor_ = text_.size(); }
  void kill_to_end();
  void kill_to_start();
  void kill_word_back();
  // Replaces the word before the cursor (back to the last blank) with `word`.
  void replace_word(std::string_view word);
  std::string_view before_cursor() const { return std::string_view(text_).substr(0, cursor_); }
  // Terminal columns of text before the cursor and after it (UTF-8 aware:
  // one column per code point).
  std::size_t columns_before() const;
  std::size_t columns_after() const;

 private:
  std::string text_;
  std::size_t cursor_ = 0;
};

// The longest common prefix of the candidates ("" for none).
std::string common_prefix(const std::vector<std::string>& candidates);

class LineEditor : public Console {
 public:
  struct Hooks {
    std::function<std::string()> prompt;
    // Candidates for the word before the cursor, given the text before it.
    std::function<std::vector<std::string>(std::string_view)> complete;
  };
  // `history` is read for up/down (the caller appends lines it runs).
  LineEditor(int in_fd, int out_fd, Hooks hooks, const std::vector<std::string>* history);
  ~LineEditor() override;

  // Call before read_line(), from the reading thread.
  void set_history(const std::vector<std::string>* history) { history_ = history; }

  // One line; nullopt at end of input (ctrl-d on an empty line, or EOF).
  std::optional<std::string> read_line();

  void out(std::string_view text) override;
  void err(std::string_view text) override;
  void async(std::string_view text) override;

 private:
  bool raw_on();
  void raw_off();
  void write_all(std::string_view s);  // caller holds mu_
  void redraw();                       // caller holds mu_
  void handle_tab();
  void history_move(int step);
  bool read_byte(unsigned char& c);

  int in_fd_;
  int out_fd_;
  Hooks hooks_;
  const std::vector<std::string>* history_;
  std::mutex mu_;
  EditBuffer buf_;
  bool editing_ = false;
  bool raw_ = false;
  std::string prompt_;
  std::size_t history_pos_ = 0;
  std::string saved_line_;  // the new line while browsing history
  struct Saved;             // the terminal's settings before raw mode
  std::unique_ptr<Saved> saved_termios_;
};

}  // namespace coord::cli
