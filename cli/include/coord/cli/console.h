// Where coordctl's output goes. Commands write through a Console so that an
// asynchronous line (a watch event, a connection state change) can be put
// on the terminal from the client's event thread without garbling what the
// command prints or the line the user is typing: the interactive editor
// implements async() by clearing its line, printing, and redrawing it.
// Thread safety: implementations are safe to call from any thread.
#pragma once

#include <iosfwd>
#include <mutex>
#include <string_view>

namespace coord::cli {

class Console {
 public:
  virtual ~Console() = default;
  // Command output (stdout).
  virtual void out(std::string_view text) = 0;
  // Error text (stderr).
  virtual void err(std::string_view text) = 0;
  // A line that arrives on its own (watch events): on stdout, between
  // command outputs, never inside the line being edited.
  virtual void async(std::string_view text) = 0;
};

// A Console on two streams, flushed after every write so that the order of
// stdout and stderr text is kept when both go to one pipe.
class StreamConsole : public Console {
 public:
  StreamConsole(std::ostream& out, std::ostream& err) : out_(out), err_(err) {}
  void out(std::string_view text) override;
  void err(std::string_view text) override;
  void async(std::string_view text) override { out(text); }

 private:
  std::mutex mu_;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace coord::cli
