// ZooKeeper's error codes, with the numeric values ZooKeeper 3.8 puts on the
// wire (docs/PROTOCOL.md §9). Every coord API that can fail reports one
// of these, so a code travels unchanged from the tree to the client.
// Thread-safe: constants and pure functions only.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace coord {

enum class ErrorCode : std::int32_t {
  Ok = 0,
  SystemError = -1,
  RuntimeInconsistency = -2,
  DataInconsistency = -3,
  ConnectionLoss = -4,
  MarshallingError = -5,
  Unimplemented = -6,
  OperationTimeout = -7,
  BadArguments = -8,
  InvalidState = -9,
  UnknownSession = -12,
  NewConfigNoQuorum = -13,
  ReconfigInProgress = -14,
  SslConnectionError = -15,
  ApiError = -100,
  NoNode = -101,
  NoAuth = -102,
  BadVersion = -103,
  NoChildrenForEphemerals = -108,
  NodeExists = -110,
  NotEmpty = -111,
  SessionExpired = -112,
  InvalidCallback = -113,
  InvalidAcl = -114,
  AuthFailed = -115,
  Closing = -116,
  Nothing = -117,
  SessionMoved = -118,
  NotReadOnly = -119,
  EphemeralOnLocalSession = -120,
  NoWatcher = -121,
  RequestTimeout = -122,
  ReconfigDisabled = -123,
  SessionClosedRequireSaslAuth = -124,
  QuotaExceeded = -125,
  Throttled = -127,
};

// ZooKeeper's Java-style name of the code ("NoNode", "BadVersion", ...);
// "Unknown" for a value outside the table.
std::string_view error_name(ErrorCode code);

// The sentence zkCli and the Java client use for the code ("KeeperErrorCode =
// NoNode" style text is built by callers); used in logs and shell output.
std::string_view error_description(ErrorCode code);

// Maps a wire value to a known code; nullopt for a value outside the table,
// which a decoder must treat as a protocol error rather than guess.
std::optional<ErrorCode> error_from_int(std::int32_t value);

constexpr std::int32_t to_int(ErrorCode code) {
  return static_cast<std::int32_t>(code);
}

}  // namespace coord
