#include "coord/cli/line_editor.h"

#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include "coord/base/limits.h"

namespace coord::cli {

namespace {

bool is_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xc0) == 0x80;
}

std::size_t columns(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) {
    if (!is_continuation(c)) ++n;
  }
  return n;
}

}  // namespace

void EditBuffer::set(std::string text) {
  text_ = std::move(text);
  cursor_ = text_.size();
}

void EditBuffer::insert(std::string_view s) {
  if (text_.size() + s.size() > limits::cli_line_bytes_max) return;
  text_.insert(cursor_, s);
  cursor_ += s.size();
}

void EditBuffer::left() {
  if (cursor_ == 0) return;
  --cursor_;
  while (cursor_ > 0 && is_continuation(text_[cursor_]))
    --cursor_;
}

void EditBuffer::right() {
  if (cursor_ >= text_.size()) return;
  ++cursor_;
  while (cursor_ < text_.size() && is_continuation(text_[cursor_]))
    ++cursor_;
}

void EditBuffer::backspace() {
  if (cursor_ == 0) return;
  std::size_t end = cursor_;
  left();
  text_.erase(cursor_, end - cursor_);
}

void EditBuffer::erase() {
  if (cursor_ >= text_.size()) return;
  std::size_t start = cursor_;
  right();
  text_.erase(start, cursor_ - start);
  cursor_ = start;
}

void EditBuffer::kill_to_end() {
  text_.erase(cursor_);
}

void EditBuffer::kill_to_start() {
  text_.erase(0, cursor_);
  cursor_ = 0;
}

void EditBuffer::kill_word_back() {
  std::size_t end = cursor_;
  while (cursor_ > 0 && text_[cursor_ - 1] == ' ')
    --cursor_;
  while (cursor_ > 0 && text_[cursor_ - 1] != ' ')
    --cursor_;
  text_.erase(cursor_, end - cursor_);
}

void EditBuffer::replace_word(std::string_view word) {
  std::size_t start = cursor_;
  while (start > 0 && text_[start - 1] != ' ' && text_[start - 1] != '\t')
    --start;
  text_.replace(start, cursor_ - start, word);
  cursor_ = start + word.size();
}

std::size_t EditBuffer::columns_before() const {
  return columns(std::string_view(text_).substr(0, cursor_));
}

std::size_t EditBuffer::columns_after() const {
  return columns(std::string_view(text_).substr(cursor_));
}

std::string common_prefix(const std::vector<std::string>& c) {
  if (c.empty()) return "";
  std::string p = c[0];
  for (const auto& s : c) {
    std::size_t n = 0;
    while (n < p.size() && n < s.size() && p[n] == s[n])
      ++n;
    p.resize(n);
  }
  // Never cut a UTF-8 sequence in half.
  while (!p.empty() && is_continuation(p.back()))
    p.pop_back();
  if (!p.empty() && (static_cast<unsigned char>(p.back()) & 0xc0) == 0xc0) p.pop_back();
  return p;
}

struct LineEditor::Saved {
  termios t;
};

LineEditor::LineEditor(int in_fd, int out_fd, Hooks hooks, const std::vector<std::string>* history)
    : in_fd_(in_fd), out_fd_(out_fd), hooks_(std::move(hooks)), history_(history) {}

LineEditor::~LineEditor() {
  raw_off();
}

bool LineEditor::raw_on() {
  if (raw_) return true;
  termios t{};
  if (tcgetattr(in_fd_, &t) != 0) return false;
  if (!saved_termios_) saved_termios_ = std::make_unique<Saved>();
  saved_termios_->t = t;
  // Keys arrive one at a time and unechoed; output processing stays on so
  // "\n" still moves to the start of the next line.
  t.c_iflag &= ~static_cast<tcflag_t>(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
  t.c_cflag |= CS8;
  t.c_lflag &= ~static_cast<tcflag_t>(ECHO | ICANON | IEXTEN | ISIG);
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  // TCSANOW, not TCSAFLUSH: keys typed ahead while a command ran are kept.
  if (tcsetattr(in_fd_, TCSANOW, &t) != 0) return false;
  raw_ = true;
  return true;
}

void LineEditor::raw_off() {
  if (!raw_ || !saved_termios_) return;
  tcsetattr(in_fd_, TCSANOW, &saved_termios_->t);
  raw_ = false;
}

void LineEditor::write_all(std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(out_fd_, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s.remove_prefix(static_cast<std::size_t>(n));
  }
}

void LineEditor::redraw() {
  std::string s = "\r" + prompt_ + buf_.text() + "\x1b[K";
  std::size_t back = buf_.columns_after();
  if (back > 0) s += "\x1b[" + std::to_string(back) + "D";
  write_all(s);
}

void LineEditor::out(std::string_view text) {
  std::lock_guard lock(mu_);
  write_all(text);
}

void LineEditor::err(std::string_view text) {
  std::lock_guard lock(mu_);
  write_all(text);
}

void LineEditor::async(std::string_view text) {
  std::lock_guard lock(mu_);
  if (!editing_) {
    write_all(text);
    return;
  }
  // Clear the line being edited, print the event where it was, then put the
  // prompt and the partial line back with the cursor where it was.
  write_all("\r\x1b[K");
  // Output processing stays on in raw mode: "\n" starts a new line.
  std::string t(text);
  write_all(t);
  if (!t.empty() && t.back() != '\n') write_all("\r\n");
  // Safe from this (another) thread: while a line is being edited the
  // shell's thread is inside read_line(), not running a command, so what
  // the prompt reads does not change under it.
  prompt_ = hooks_.prompt ? hooks_.prompt() : std::string("> ");
  redraw();
}

bool LineEditor::read_byte(unsigned char& c) {
  while (true) {
    ssize_t n = ::read(in_fd_, &c, 1);
    if (n == 1) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

void LineEditor::history_move(int step) {
  std::size_t size = history_ ? history_->size() : 0;
  if (step < 0) {
    if (history_pos_ == 0) return;
    if (history_pos_ == size) saved_line_ = buf_.text();
    --history_pos_;
    buf_.set((*history_)[history_pos_]);
  } else {
    if (history_pos_ >= size) return;
    ++history_pos_;
    buf_.set(history_pos_ == size ? saved_line_ : (*history_)[history_pos_]);
  }
  redraw();
}

void LineEditor::handle_tab() {
  std::string before;
  {
    std::lock_guard lock(mu_);
    before = std::string(buf_.before_cursor());
  }
  // Completion may ask the server; it runs without the lock so that watch
  // events can still be printed meanwhile.
  std::vector<std::string> c =
      hooks_.complete ? hooks_.complete(before) : std::vector<std::string>{};
  std::lock_guard lock(mu_);
  if (c.empty()) {
    write_all("\a");
    return;
  }
  std::size_t start = before.size();
  while (start > 0 && before[start - 1] != ' ' && before[start - 1] != '\t')
    --start;
  std::string word = before.substr(start);
  if (c.size() == 1) {
    bool is_command = before.find_first_not_of(" \t") == start || start == 0;
    buf_.replace_word(c[0] + (is_command ? " " : ""));
    redraw();
    return;
  }
  std::string prefix = common_prefix(c);
  if (prefix.size() > word.size()) {
    buf_.replace_word(prefix);
    redraw();
    return;
  }
  std::string list = "\r\n";
  for (std::size_t i = 0; i < c.size(); ++i)
    list += c[i] + (i + 1 < c.size() ? "  " : "\r\n");
  write_all("\r\x1b[K");
  write_all(list);
  redraw();
}

std::optional<std::string> LineEditor::read_line() {
  bool raw_ok = raw_on();
  {
    std::lock_guard lock(mu_);
    prompt_ = hooks_.prompt ? hooks_.prompt() : std::string("> ");
    buf_.set("");
    history_pos_ = history_ ? history_->size() : 0;
    saved_line_.clear();
    editing_ = true;
    redraw();
  }
  auto finish = [&](std::optional<std::string> line) {
    {
      std::lock_guard lock(mu_);
      editing_ = false;
      write_all("\r\n");
    }
    raw_off();
    return line;
  };
  (void)raw_ok;  // not a terminal (a test pipe): keys are read as they come
  while (true) {
    unsigned char c;
    if (!read_byte(c)) {
      std::optional<std::string> partial;
      {
        std::lock_guard lock(mu_);
        if (!buf_.text().empty()) partial = buf_.text();
      }
      return finish(partial);
    }
    if (c == '\t') {
      handle_tab();
      continue;
    }
    std::lock_guard lock(mu_);
    switch (c) {
      case '\r':
      case '\n': {
        std::string line = buf_.text();
        editing_ = false;
        write_all("\r\n");
        raw_off();
        return line;
      }
      case 1:  // ctrl-a
        buf_.home();
        break;
      case 2:  // ctrl-b
        buf_.left();
        break;
      case 3:  // ctrl-c: drop the line
        write_all("^C\r\n");
        buf_.set("");
        history_pos_ = history_ ? history_->size() : 0;
        break;
      case 4:  // ctrl-d
        if (buf_.text().empty()) {
          editing_ = false;
          write_all("\r\n");
          raw_off();
          return std::nullopt;
        }
        buf_.erase();
        break;
      case 5:  // ctrl-e
        buf_.end();
        break;
      case 6:  // ctrl-f
        buf_.right();
        break;
      case 8:    // ctrl-h
      case 127:  // backspace
        buf_.backspace();
        break;
      case 11:  // ctrl-k
        buf_.kill_to_end();
        break;
      case 12:  // ctrl-l
        write_all("\x1b[H\x1b[2J");
        break;
      case 14:  // ctrl-n
        history_move(+1);
        continue;
      case 16:  // ctrl-p
        history_move(-1);
        continue;
      case 21:  // ctrl-u
        buf_.kill_to_start();
        break;
      case 23:  // ctrl-w
        buf_.kill_word_back();
        break;
      case 27: {  // an escape sequence
        unsigned char a, b;
        if (!read_byte(a) || !read_byte(b)) break;
        if (a == '[' && b >= '0' && b <= '9') {
          unsigned char tilde;
          if (!read_byte(tilde)) break;
          if (b == '3') buf_.erase();
          if (b == '1' || b == '7') buf_.home();
          if (b == '4' || b == '8') buf_.end();
        } else if (a == '[' || a == 'O') {
          switch (b) {
            case 'A':
              history_move(-1);
              continue;
            case 'B':
              history_move(+1);
              continue;
            case 'C':
              buf_.right();
              break;
            case 'D':
              buf_.left();
              break;
            case 'H':
              buf_.home();
              break;
            case 'F':
              buf_.end();
              break;
            default:
              break;
          }
        }
        break;
      }
      default:
        if (c >= 32) buf_.insert(std::string(1, static_cast<char>(c)));
        break;
    }
    redraw();
  }
}

}  // namespace coord::cli
