#include "coord/base/error.h"

#include <array>

namespace coord {
namespace {

struct ErrorInfo {
  ErrorCode code;
  std::string_view name;
  std::string_view description;
};

constexpr std::array kErrors = {
    ErrorInfo{ErrorCode::Ok, "Ok", "ok"},
    ErrorInfo{ErrorCode::SystemError, "SystemError", "system error"},
    ErrorInfo{ErrorCode::RuntimeInconsistency, "RuntimeInconsistency", "runtime inconsistency"},
    ErrorInfo{ErrorCode::DataInconsistency, "DataInconsistency", "data inconsistency"},
    ErrorInfo{ErrorCode::ConnectionLoss, "ConnectionLoss", "connection loss"},
    ErrorInfo{ErrorCode::MarshallingError, "MarshallingError",
              "error while marshalling or unmarshalling data"},
    ErrorInfo{ErrorCode::Unimplemented, "Unimplemented", "unimplemented"},
    ErrorInfo{ErrorCode::OperationTimeout, "OperationTimeout", "operation timeout"},
    ErrorInfo{ErrorCode::BadArguments, "BadArguments", "bad arguments"},
    ErrorInfo{ErrorCode::InvalidState, "InvalidState", "invalid zhandle state"},
    ErrorInfo{ErrorCode::UnknownSession, "UnknownSession", "unknown session"},
    ErrorInfo{ErrorCode::NewConfigNoQuorum, "NewConfigNoQuorum",
              "no quorum of new config is connected"},
    ErrorInfo{ErrorCode::ReconfigInProgress, "ReconfigInProgress",
              "another reconfiguration is in progress"},
    ErrorInfo{ErrorCode::SslConnectionError, "SslConnectionError", "SSL connection error"},
    ErrorInfo{ErrorCode::ApiError, "ApiError", "API error"},
    ErrorInfo{ErrorCode::NoNode, "NoNode", "no node"},
    ErrorInfo{ErrorCode::NoAuth, "NoAuth", "not authenticated"},
    ErrorInfo{ErrorCode::BadVersion, "BadVersion", "bad version"},
    ErrorInfo{ErrorCode::NoChildrenForEphemerals, "NoChildrenForEphemerals",
              "ephemeral nodes may not have children"},
    ErrorInfo{ErrorCode::NodeExists, "NodeExists", "node exists"},
    ErrorInfo{ErrorCode::NotEmpty, "NotEmpty", "directory not empty"},
    ErrorInfo{ErrorCode::SessionExpired, "SessionExpired", "session expired"},
    ErrorInfo{ErrorCode::InvalidCallback, "InvalidCallback", "invalid callback"},
    ErrorInfo{ErrorCode::InvalidAcl, "InvalidAcl", "invalid ACL specified"},
    ErrorInfo{ErrorCode::AuthFailed, "AuthFailed", "authentication failed"},
    ErrorInfo{ErrorCode::Closing, "Closing", "zookeeper is closing"},
    ErrorInfo{ErrorCode::Nothing, "Nothing", "(not error) no server responses to process"},
    ErrorInfo{ErrorCode::SessionMoved, "SessionMoved",
              "session moved to another server, so operation is ignored"},
    ErrorInfo{ErrorCode::NotReadOnly, "NotReadOnly",
              "state-changing request is passed to read-only server"},
    ErrorInfo{ErrorCode::EphemeralOnLocalSession, "EphemeralOnLocalSession",
              "attempt to create ephemeral node on a local session"},
    ErrorInfo{ErrorCode::NoWatcher, "NoWatcher", "the watcher couldn't be found"},
    ErrorInfo{ErrorCode::RequestTimeout, "RequestTimeout", "request timeout"},
    ErrorInfo{
        ErrorCode::ReconfigDisabled, "ReconfigDisabled",
        "attempts to perform a reconfiguration operation when reconfiguration feature is disabled"},
    ErrorInfo{ErrorCode::SessionClosedRequireSaslAuth, "SessionClosedRequireSaslAuth",
              "session closed because client failed to authenticate"},
    ErrorInfo{ErrorCode::QuotaExceeded, "QuotaExceeded", "quota has exceeded"},
    ErrorInfo{ErrorCode::Throttled, "Throttled", "operation was throttled and not executed at all"},
};

const ErrorInfo* find(ErrorCode code) {
  for (const auto& e : kErrors) {
    if (e.code == code) return &e;
  }
  return nullptr;
}

}  // namespace

std::string_view error_name(ErrorCode code) {
  const ErrorInfo* e = find(code);
  return e ? e->name : std::string_view("Unknown");
}

std::string_view error_description(ErrorCode code) {
  const ErrorInfo* e = find(code);
  return e ? e->description : std::string_view("unknown error");
}

std::optional<ErrorCode> error_from_int(std::int32_t value) {
  for (const auto& e : kErrors) {
    if (to_int(e.code) == value) return e.code;
  }
  return std::nullopt;
}

}  // namespace coord
