#include "coord/io/log_store.h"

#include <lmdb.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string_view>
#include <tuple>
#include <utility>

#include "coord/base/assert.h"
#include "coord/base/bytes.h"
#include "coord/base/checksum.h"
#include "coord/base/limits.h"
#include "coord/io/lmdb_check.h"
#include "coord/io/log_journal.h"
#include "coord/io/log_records.h"

namespace coord::io {
namespace {

constexpr std::string_view kFormatKey = "format";
constexpr std::string_view kFormatValue = "coord-log-2";
// The format before the journal: the same tables, read as they are; open()
// marks the store with the new value, so that an older coordd, which would
// not read the journal, refuses it.
constexpr std::string_view kFormatBeforeJournal = "coord-log-1";
constexpr std::string_view kHardStateKey = "hard_state";
constexpr std::string_view kSnapshotKey = "snapshot";
// The journal's id (8 bytes), chosen with the file, and the number of the
// last journal record LMDB holds (8 bytes).
constexpr std::string_view kJournalIdKey = "journal_id";
constexpr std::string_view kJournalAppliedKey = "journal_applied";
constexpr std::string_view kJournalFile = "journal";
using records::index_key;
using records::seal;
using records::unseal;

MDB_val as_val(std::string_view s) {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
std::string_view as_view(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

}  // namespace

namespace records {

std::string seal(std::string_view key, std::string_view body) {
  std::string out;
  out.reserve(seal_bytes + body.size());
  put_be32(out, crc32c_extend(crc32c(key), body.data(), body.size()));
  out.append(body);
  return out;
}

std::optional<std::string_view> unseal(std::string_view key, std::string_view value) {
  if (value.size() < seal_bytes) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(value.data());
  std::string_view body = value.substr(seal_bytes);
  if (get_be32(p) != crc32c_extend(crc32c(key), body.data(), body.size())) return std::nullopt;
  return body;
}

std::string index_key(LogIndex index) {
  std::string k;
  put_be64(k, index.value());
  return k;
}

void seal_entry_at(char* out, std::string_view key, Term term, std::uint8_t kind,
                   std::string_view data) {
  auto* body = reinterpret_cast<unsigned char*>(out + seal_bytes);
  const std::uint64_t t = term.value();
  for (int i = 0; i < 8; ++i)
    body[i] = static_cast<unsigned char>(t >> (56 - 8 * i));
  body[8] = kind;
  if (!data.empty()) std::memcpy(body + 9, data.data(), data.size());
  const std::uint32_t crc = crc32c_extend(crc32c(key), body, 9 + data.size());
  auto* head = reinterpret_cast<unsigned char*>(out);
  for (int i = 0; i < 4; ++i)
    head[i] = static_cast<unsigned char>(crc >> (24 - 8 * i));
}

std::string entry_body(const LogRecord& r) {
  std::string body;
  body.reserve(9 + r.data.size());
  put_be64(body, r.term.value());
  body.push_back(static_cast<char>(r.kind));
  body += r.data;
  return body;
}

Result<LogRecord> decode_entry(std::string_view key, std::string_view value) {
  if (key.size() != index_key_bytes) {
    return Status(ErrorCode::DataInconsistency,
                  "log key of " + std::to_string(key.size()) + " bytes");
  }
  const LogIndex index(get_be64(reinterpret_cast<const unsigned char*>(key.data())));
  auto body = unseal(key, value);
  if (!body || body->size() < 9) {
    return Status(ErrorCode::DataInconsistency,
                  "log entry " + std::to_string(index.value()) + " fails its checksum");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(body->data());
  return LogRecord{index, Term(get_be64(p)), p[8], std::string(body->substr(9))};
}

std::string hard_state_body(const HardState& h) {
  std::string body;
  put_be64(body, h.term.value());
  put_be64(body, h.vote.value());
  put_be64(body, h.commit.value());
  return body;
}

Result<HardState> decode_hard_state(std::string_view body) {
  if (body.size() != 24) {
    return Status(ErrorCode::DataInconsistency, "hard state record has a bad size");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(body.data());
  return HardState{Term(get_be64(p)), NodeId(get_be64(p + 8)), LogIndex(get_be64(p + 16))};
}

std::string snapshot_body(const SnapshotMeta& m) {
  std::string body;
  put_be64(body, m.index.value());
  put_be64(body, m.term.value());
  body += m.config;
  return body;
}

Result<SnapshotMeta> decode_snapshot(std::string_view body) {
  if (body.size() < 16) {
    return Status(ErrorCode::DataInconsistency, "snapshot record has a bad size");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(body.data());
  return SnapshotMeta{LogIndex(get_be64(p)), Term(get_be64(p + 8)), std::string(body.substr(16))};
}

}  // namespace records

struct LmdbLogStore::Env {
  MDB_env* env = nullptr;
  MDB_dbi log = 0;
  MDB_dbi meta = 0;
  // Where LMDB mapped the file (LMDB does not say: mdb_env_info gives the
  // address only for a fixed map); null when not found.
  void* map = nullptr;
  std::size_t map_bytes = 0;
  ~Env() {
    if (env != nullptr) mdb_env_close(env);
  }
};

namespace {

// The largest mapping of `file` in this process, from /proc/self/maps,
// matched by device and inode.
std::pair<void*, std::size_t> mapping_of(const std::string& file) {
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) return {nullptr, 0};
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::pair<void*, std::size_t> best{nullptr, 0};
  while (std::getline(maps, line)) {
    // "start-end perms offset major:minor inode [path]", numbers in hex
    // but the inode.
    unsigned long long start = 0, end = 0, offset = 0, inode = 0;
    unsigned dev_major = 0, dev_minor = 0;
    char perms[8];
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu", &start, &end, perms, &offset,
                    &dev_major, &dev_minor, &inode) != 7) {
      continue;
    }
    if (inode != st.st_ino || dev_major != major(st.st_dev) || dev_minor != minor(st.st_dev)) {
      continue;
    }
    if (end - start > best.second) best = {reinterpret_cast<void*>(start), end - start};
  }
  return best;
}

// A write or read transaction that aborts unless committed.
class Txn {
 public:
  Txn(MDB_env* env, bool read_only) {
    rc_ = mdb_txn_begin(env, nullptr, read_only ? MDB_RDONLY : 0, &txn_);
  }
  ~Txn() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  int begin_rc() const { return rc_; }
  MDB_txn* get() const { return txn_; }
  int commit() {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    return rc;
  }

 private:
  MDB_txn* txn_ = nullptr;
  int rc_ = 0;
};

class Cursor {
 public:
  Cursor(MDB_txn* txn, MDB_dbi dbi) { rc_ = mdb_cursor_open(txn, dbi, &c_); }
  ~Cursor() { close(); }
  // LMDB frees a write transaction's cursors when it commits, so they must
  // be closed before the commit; read-only ones are closed here.
  void close() {
    if (c_ != nullptr) mdb_cursor_close(c_);
    c_ = nullptr;
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  int open_rc() const { return rc_; }
  MDB_cursor* get() const { return c_; }

 private:
  MDB_cursor* c_ = nullptr;
  int rc_ = 0;
};

}  // namespace

static Status lmdb_error(const std::string& file, std::string_view what, int rc) {
  std::string msg = file + ": " + std::string(what) + ": " + mdb_strerror(rc);
  if (rc == MDB_MAP_FULL) {
    msg += " (the log store reached its map size; compact the log or raise the limit)";
  } else if (rc == ENOSPC) {
    msg += " (the disk is full)";
  }
  return Status(ErrorCode::SystemError, std::move(msg));
}

Result<std::unique_ptr<LmdbLogStore>> LmdbLogStore::open(const std::string& dir, Options options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status(ErrorCode::SystemError, dir + ": cannot create: " + ec.message());
  auto env = std::make_unique<Env>();
  const std::string file = (std::filesystem::path(dir) / "data.mdb").string();
  std::uint64_t journal_id = 0;
  // LMDB maps the file and trusts it: a file cut short or a damaged page
  // would kill the process with SIGBUS on the first read past its end.
  COORD_RETURN_IF_ERROR(check_lmdb_file(file));
  int rc = mdb_env_create(&env->env);
  if (rc != 0) return lmdb_error(file, "create environment", rc);
  if ((rc = mdb_env_set_mapsize(env->env, options.map_bytes)) != 0) {
    return lmdb_error(file, "set map size", rc);
  }
  if ((rc = mdb_env_set_maxdbs(env->env, 2)) != 0) return lmdb_error(file, "set max dbs", rc);
  unsigned flags = MDB_NOTLS;
  if (!options.sync) flags |= MDB_NOSYNC;
  if ((rc = mdb_env_open(env->env, dir.c_str(), flags, 0644)) != 0) {
    return lmdb_error(file, "open", rc);
  }
  std::tie(env->map, env->map_bytes) = mapping_of(file);
  {
    Txn txn(env->env, false);
    if (txn.begin_rc() != 0) return lmdb_error(file, "begin", txn.begin_rc());
    if ((rc = mdb_dbi_open(txn.get(), "log", MDB_CREATE, &env->log)) != 0) {
      return lmdb_error(file, "open log table", rc);
    }
    if ((rc = mdb_dbi_open(txn.get(), "meta", MDB_CREATE, &env->meta)) != 0) {
      return lmdb_error(file, "open meta table", rc);
    }
    MDB_val key = as_val(kFormatKey);
    MDB_val value;
    rc = mdb_get(txn.get(), env->meta, &key, &value);
    if (rc == MDB_NOTFOUND || (rc == 0 && as_view(value) == kFormatBeforeJournal)) {
      MDB_val v = as_val(kFormatValue);
      if ((rc = mdb_put(txn.get(), env->meta, &key, &v, 0)) != 0) {
        return lmdb_error(file, "write format", rc);
      }
    } else if (rc != 0) {
      return lmdb_error(file, "read format", rc);
    } else if (as_view(value) != kFormatValue) {
      return Status(ErrorCode::SystemError,
                    file + ": unknown log format '" + std::string(as_view(value)) + "'");
    }
    key = as_val(kJournalIdKey);
    rc = mdb_get(txn.get(), env->meta, &key, &value);
    if (rc == MDB_NOTFOUND) {
      std::random_device rd;
      journal_id = (std::uint64_t{rd()} << 32) | rd();
      std::string body;
      put_be64(body, journal_id);
      std::string sealed = seal(kJournalIdKey, body);
      MDB_val v = as_val(sealed);
      if ((rc = mdb_put(txn.get(), env->meta, &key, &v, 0)) != 0) {
        return lmdb_error(file, "write journal id", rc);
      }
    } else if (rc != 0) {
      return lmdb_error(file, "read journal id", rc);
    } else {
      auto body = unseal(kJournalIdKey, as_view(value));
      if (!body || body->size() != 8) {
        return Status(ErrorCode::DataInconsistency,
                      file + ": journal id record fails its checksum");
      }
      journal_id = get_be64(body->data());
    }
    if ((rc = txn.commit()) != 0) return lmdb_error(file, "commit", rc);
  }
  std::unique_ptr<LmdbLogStore> store(new LmdbLogStore(std::move(env), file));
  store->dir_ = dir;
  store->disk_free_bytes_min_ = options.disk_free_bytes_min;
  store->map_release_bytes_ = options.map_release_bytes;
  store->journal_writes_ = options.sync;
  store->checkpoint_bytes_ = std::min(limits::log_journal_checkpoint_bytes,
                                      options.map_bytes / limits::log_journal_map_share);
  if (MDB_stat st; mdb_env_stat(store->env_->env, &st) == 0) store->page_bytes_ = st.ms_psize;
  COORD_RETURN_IF_ERROR(store->load());
  COORD_RETURN_IF_ERROR(store->open_journal(journal_id, options.sync));
  return store;
}

LmdbLogStore::LmdbLogStore(std::unique_ptr<Env> env, std::string file)
    : env_(std::move(env)), file_(std::move(file)) {}

LmdbLogStore::~LmdbLogStore() = default;

Status LmdbLogStore::load() {
  Txn txn(env_->env, true);
  if (txn.begin_rc() != 0) return lmdb_error(file_, "begin", txn.begin_rc());

  auto read_meta = [&](std::string_view name) -> Result<std::optional<std::string>> {
    MDB_val key = as_val(name);
    MDB_val value;
    int rc = mdb_get(txn.get(), env_->meta, &key, &value);
    if (rc == MDB_NOTFOUND) return std::optional<std::string>();
    if (rc != 0) return lmdb_error(file_, "read " + std::string(name), rc);
    auto body = unseal(name, as_view(value));
    if (!body) {
      return Status(ErrorCode::DataInconsistency,
                    file_ + ": " + std::string(name) + " record fails its checksum");
    }
    return std::optional<std::string>(std::string(*body));
  };

  auto hs = read_meta(kHardStateKey);
  if (!hs.ok()) return hs.status();
  if (*hs) {
    auto h = records::decode_hard_state(**hs);
    if (!h.ok()) return Status(h.code(), file_ + ": " + h.status().message());
    hard_state_ = *h;
  }
  auto snap = read_meta(kSnapshotKey);
  if (!snap.ok()) return snap.status();
  if (*snap) {
    auto m = records::decode_snapshot(**snap);
    if (!m.ok()) return Status(m.code(), file_ + ": " + m.status().message());
    snapshot_ = std::move(m).value();
  }

  const LogIndex snap_index = snapshot_ ? snapshot_->index : LogIndex(0);
  first_ = snap_index.next();
  last_ = snap_index;
  Cursor cursor(txn.get(), env_->log);
  if (cursor.open_rc() != 0) return lmdb_error(file_, "open cursor", cursor.open_rc());
  MDB_val key;
  MDB_val value;
  auto index_of = [&](const MDB_val& k) -> std::optional<LogIndex> {
    if (k.mv_size != records::index_key_bytes) return std::nullopt;
    return LogIndex(get_be64(static_cast<const unsigned char*>(k.mv_data)));
  };
  const Status bad_key(ErrorCode::DataInconsistency, file_ + ": log key of bad size");
  int rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_FIRST);
  if (rc == MDB_NOTFOUND) return Status();
  if (rc != 0) return lmdb_error(file_, "read first entry", rc);
  const auto lowest = index_of(key);
  if (!lowest) return bad_key;
  rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_LAST);
  if (rc != 0) return lmdb_error(file_, "read last entry", rc);
  const auto highest = index_of(key);
  if (!highest) return bad_key;
  // Entries at or below the snapshot are what a stop between compaction
  // chunks left: not part of the log, counted here only so that a hole
  // among the others is still found.
  std::uint64_t covered = 0;
  if (*lowest <= snap_index) {
    covered_from_ = *lowest;
    rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_FIRST);
    while (rc == 0) {
      const auto at = index_of(key);
      if (!at) return bad_key;
      if (*at > snap_index) break;
      ++covered;
      rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(file_, "read covered entries", rc);
    if (rc == 0) first_ = *index_of(key);
  } else {
    first_ = *lowest;
  }
  if (*highest > snap_index) last_ = *highest;
  MDB_stat st;
  if ((rc = mdb_stat(txn.get(), env_->log, &st)) != 0) return lmdb_error(file_, "stat", rc);
  if (st.ms_entries - covered != last_.value() + 1 - first_.value()) {
    return Status(ErrorCode::DataInconsistency, file_ + ": the log has holes between entries " +
                                                    std::to_string(first_.value()) + " and " +
                                                    std::to_string(last_.value()));
  }
  return Status();
}

Status LmdbLogStore::open_journal(std::uint64_t id, bool create) {
  const std::string path = (std::filesystem::path(dir_) / kJournalFile).string();
  if (!create && !std::filesystem::exists(path)) return Status();
  std::uint64_t applied = 0;
  {
    Txn txn(env_->env, true);
    if (txn.begin_rc() != 0) return lmdb_error(file_, "begin", txn.begin_rc());
    MDB_val key = as_val(kJournalAppliedKey);
    MDB_val value;
    const int rc = mdb_get(txn.get(), env_->meta, &key, &value);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(file_, "read journal_applied", rc);
    if (rc == 0) {
      auto body = unseal(kJournalAppliedKey, as_view(value));
      if (!body || body->size() != 8) {
        return Status(ErrorCode::DataInconsistency,
                      file_ + ": journal_applied record fails its checksum");
      }
      applied = get_be64(body->data());
    }
  }
  auto journal = LogJournal::open(path, id);
  if (!journal.ok()) return journal.status();
  journal_ = std::move(journal).value();
  return journal_->recover(
      applied, [this](const JournalRecord& r, std::uint64_t offset, std::string_view bytes) {
        const LogIndex snap_index = snapshot_ ? snapshot_->index : LogIndex(0);
        if (!r.entries.empty()) {
          const LogIndex from = r.entries.front().index;
          bool follows = from > snap_index && from <= last_.next();
          for (std::size_t i = 1; i < r.entries.size(); ++i)
            follows = follows && r.entries[i].index == r.entries[i - 1].index.next();
          if (!follows) {
            return Status(ErrorCode::DataInconsistency,
                          journal_->path() + ": journal record " + std::to_string(r.seq) +
                              " holds entries from " + std::to_string(from.value()) +
                              " that do not follow the log, which ends at " +
                              std::to_string(last_.value()));
          }
        }
        add_pending(r, offset, bytes);
        return Status();
      });
}

void LmdbLogStore::add_pending(const JournalRecord& r, std::uint64_t offset,
                               std::string_view bytes) {
  std::lock_guard lock(pending_mu_);
  pending_bytes_ += bytes.size();
  pending_records_.push_back(PendingRecord{offset, bytes.size()});
  if (!r.entries.empty()) {
    const LogIndex from = r.entries.front().index;
    if (!pending_.empty() && from >= pending_.front().index) {
      while (!pending_.empty() && pending_.back().index >= from)
        pending_.pop_back();
    } else {
      pending_.clear();
    }
    for (const LogEntryRef& e : r.entries) {
      const auto at = static_cast<std::uint64_t>(e.data.data() - bytes.data());
      pending_.push_back(PendingEntry{e.index, e.term, e.kind, offset + at, e.data.size()});
    }
    last_ = r.entries.back().index;
    if (first_ > from) first_ = from;
  }
  if (r.hard_state) {
    pending_hard_state_ = r.hard_state;
    hard_state_ = r.hard_state;
  }
}

Result<LogRecord> LmdbLogStore::pending_entry(const PendingEntry& e) const {
  LogRecord out{e.index, e.term, e.kind, {}};
  COORD_RETURN_IF_ERROR(journal_->read(e.data_offset, e.data_bytes, out.data));
  return out;
}

Status LmdbLogStore::find_covered() {
  covered_from_.reset();
  if (!snapshot_) return Status();
  Txn txn(env_->env, true);
  if (txn.begin_rc() != 0) return lmdb_error(file_, "begin", txn.begin_rc());
  Cursor cursor(txn.get(), env_->log);
  if (cursor.open_rc() != 0) return lmdb_error(file_, "open cursor", cursor.open_rc());
  MDB_val key;
  MDB_val value;
  const int rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_FIRST);
  if (rc == MDB_NOTFOUND) return Status();
  if (rc != 0) return lmdb_error(file_, "read first entry", rc);
  if (key.mv_size != records::index_key_bytes) {
    return Status(ErrorCode::DataInconsistency, file_ + ": log key of bad size");
  }
  const LogIndex lowest(get_be64(static_cast<const unsigned char*>(key.mv_data)));
  if (lowest <= snapshot_->index) covered_from_ = lowest;
  return Status();
}

// Deletes the stored entries from `bound` on, or up to and including
// `bound` when `up_to`. After mdb_cursor_del the cursor's MDB_NEXT yields
// the entry that followed the deleted one.
static int drop_entries(MDB_cursor* cursor, LogIndex bound, bool up_to) {
  std::string k = index_key(bound);
  MDB_val key = as_val(k);
  MDB_val value;
  int rc = mdb_cursor_get(cursor, &key, &value, up_to ? MDB_FIRST : MDB_SET_RANGE);
  while (rc == 0) {
    if (key.mv_size != records::index_key_bytes) return MDB_CORRUPTED;
    if (up_to && get_be64(static_cast<const unsigned char*>(key.mv_data)) > bound.value()) break;
    if ((rc = mdb_cursor_del(cursor, 0)) != 0) return rc;
    rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT);
  }
  return rc == MDB_NOTFOUND ? 0 : rc;
}

Status LmdbLogStore::write(const LogWrite& w) {
  std::vector<LogEntryRef> refs;
  refs.reserve(w.entries.size());
  for (const LogRecord& e : w.entries)
    refs.push_back(LogEntryRef{e.index, e.term, e.kind, e.data});
  LogWrite rest;
  rest.hard_state = w.hard_state;
  rest.snapshot = w.snapshot;
  rest.discard_log = w.discard_log;
  return write(rest, refs);
}

void LmdbLogStore::check_write(const LogWrite& w, const std::vector<LogEntryRef>& entries) const {
  COORD_ASSERT(w.entries.empty(), "entries given twice");
  if (w.snapshot) {
    COORD_ASSERT(!snapshot_ || w.snapshot->index >= snapshot_->index,
                 "snapshot index went back from ", snapshot_->index, " to ", w.snapshot->index);
  }
  const LogIndex snap_index =
      w.snapshot ? w.snapshot->index : (snapshot_ ? snapshot_->index : LogIndex(0));
  if (!entries.empty()) {
    const LogIndex from = entries.front().index;
    COORD_ASSERT(from > snap_index, "entry ", from, " is covered by the snapshot at ", snap_index);
    COORD_ASSERT(from <= last_.next() || (w.snapshot && from == snap_index.next()) ||
                     (w.discard_log && from == snap_index.next()),
                 "entries must follow the log: first ", from, ", last stored ", last_);
    for (std::size_t i = 1; i < entries.size(); ++i) {
      COORD_ASSERT(entries[i].index == entries[i - 1].index.next(),
                   "entries must be contiguous at ", entries[i].index);
    }
  }
}

Status LmdbLogStore::write(const LogWrite& w, const std::vector<LogEntryRef>& entries) {
  check_write(w, entries);
  if (disk_free_bytes_min_ > 0) {
    // Through the open file, not its path: this runs before every write.
    struct statvfs fs {};
    mdb_filehandle_t fd = -1;
    if (mdb_env_get_fd(env_->env, &fd) == 0 && ::fstatvfs(fd, &fs) == 0) {
      const std::uint64_t free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
      if (free_bytes < disk_free_bytes_min_) {
        return Status(ErrorCode::SystemError,
                      file_ + ": write refused: " + std::to_string(free_bytes) +
                          " bytes free on its file system, below the reserve of " +
                          std::to_string(disk_free_bytes_min_) + " (the disk is nearly full)");
      }
    }
  }
  if (journal_ && journal_writes_ && journal_->usable() && !checkpoint_failed_ && !w.snapshot &&
      !w.discard_log) {
    journal_->encode(w.hard_state, entries, record_buf_);
    // A record that would take the journal past what a checkpoint may
    // write goes to LMDB with the rest instead.
    if (pending_bytes_ + record_buf_.size() <= checkpoint_bytes_) {
      const std::uint64_t offset = journal_->end();
      COORD_RETURN_IF_ERROR(journal_->append(record_buf_));
      auto r = LogJournal::decode(record_buf_);
      COORD_ASSERT(r.ok(), "a journal record just encoded does not decode");
      add_pending(*r, offset, record_buf_);
      return Status();
    }
  }
  return write_lmdb(w, entries);
}

Status LmdbLogStore::put_pending(MDB_txn* txn, MDB_cursor* cursor, LogIndex skip_through) {
  int rc = 0;
  auto failed = [&](std::string_view what) { return lmdb_error(file_, what, rc); };
  // The records in the order written, each replacing the stored entries
  // from its first on, read back one at a time: the journal is not held in
  // memory twice.
  for (const PendingRecord& p : pending_records_) {
    COORD_RETURN_IF_ERROR(journal_->read(p.offset, p.bytes, record_buf_));
    auto r = LogJournal::decode(record_buf_);
    if (!r.ok()) return Status(r.code(), journal_->path() + ": " + r.status().message());
    if (r->entries.empty()) continue;
    if ((rc = drop_entries(cursor, r->entries.front().index, false)) != 0) {
      return failed("replace entries");
    }
    for (const LogEntryRef& e : r->entries) {
      if (e.index <= skip_through) continue;
      const std::string k = index_key(e.index);
      MDB_val key = as_val(k);
      MDB_val value{records::sealed_entry_bytes(e.data.size()), nullptr};
      if ((rc = mdb_put(txn, env_->log, &key, &value, MDB_APPEND | MDB_RESERVE)) != 0) {
        return failed("append entry " + std::to_string(e.index.value()));
      }
      records::seal_entry_at(static_cast<char*>(value.mv_data), k, e.term, e.kind, e.data);
      appended_since_release_ += value.mv_size;
    }
  }
  // A large record leaves no large buffer behind.
  if (record_buf_.capacity() > limits::log_journal_checkpoint_bytes / 4) {
    record_buf_ = std::string();
  }
  if (pending_hard_state_) {
    std::string sealed = seal(kHardStateKey, records::hard_state_body(*pending_hard_state_));
    MDB_val key = as_val(kHardStateKey);
    MDB_val value = as_val(sealed);
    if ((rc = mdb_put(txn, env_->meta, &key, &value, 0)) != 0) return failed("write hard state");
  }
  if (journal_) {
    std::string body;
    put_be64(body, journal_->last_seq());
    std::string sealed = seal(kJournalAppliedKey, body);
    MDB_val key = as_val(kJournalAppliedKey);
    MDB_val value = as_val(sealed);
    if ((rc = mdb_put(txn, env_->meta, &key, &value, 0)) != 0) {
      return failed("write journal_applied");
    }
  }
  return Status();
}

void LmdbLogStore::pending_written() {
  {
    std::lock_guard lock(pending_mu_);
    pending_.clear();
    pending_records_.clear();
  }
  pending_hard_state_.reset();
  pending_bytes_ = 0;
  checkpoint_failed_ = false;
  if (journal_) journal_->restart();
}

Status LmdbLogStore::checkpoint() {
  if (pending_records_.empty()) return Status();
  Status st = write_lmdb(LogWrite{}, {});
  // The next writes go to LMDB too, so that a full disk shows at once as
  // failed writes, not only once the journal has no room left.
  if (!st.ok()) checkpoint_failed_ = true;
  return st;
}

Status LmdbLogStore::write_lmdb(const LogWrite& w, const std::vector<LogEntryRef>& entries) {
  LogIndex new_first = first_;
  LogIndex new_last = last_;
  Txn txn(env_->env, false);
  if (txn.begin_rc() != 0) return lmdb_error(file_, "begin", txn.begin_rc());
  Cursor cursor(txn.get(), env_->log);
  if (cursor.open_rc() != 0) return lmdb_error(file_, "open cursor", cursor.open_rc());
  COORD_RETURN_IF_ERROR(put_pending(txn.get(), cursor.get(), LogIndex(0)));
  int rc = 0;

  // The lowest entry stored before this write, which the snapshot may now
  // cover.
  std::optional<LogIndex> lowest = covered_from_;
  if (!lowest && first_ <= last_) lowest = first_;
  if (w.snapshot) {
    // What it covers stays for compact_covered(): dropping it here would
    // make this write, and every one queued behind it, wait for all of it.
    if (w.discard_log && (rc = drop_entries(cursor.get(), w.snapshot->index.next(), false)) != 0) {
      return lmdb_error(file_, "drop the log after the snapshot", rc);
    }
    std::string sealed = seal(kSnapshotKey, records::snapshot_body(*w.snapshot));
    MDB_val key = as_val(kSnapshotKey);
    MDB_val value = as_val(sealed);
    if ((rc = mdb_put(txn.get(), env_->meta, &key, &value, 0)) != 0) {
      return lmdb_error(file_, "write snapshot record", rc);
    }
    if (new_first <= w.snapshot->index || w.discard_log) new_first = w.snapshot->index.next();
    if (new_last < w.snapshot->index || w.discard_log) new_last = w.snapshot->index;
  }

  if (!entries.empty()) {
    const LogIndex from = entries.front().index;
    const bool appending = from == new_last.next();
    if (!appending && (rc = drop_entries(cursor.get(), from, false)) != 0) {
      return lmdb_error(file_, "drop conflicting entries", rc);
    }
    for (const LogEntryRef& e : entries) {
      const std::string k = index_key(e.index);
      MDB_val key = as_val(k);
      MDB_val value{records::sealed_entry_bytes(e.data.size()), nullptr};
      // LMDB hands out the value's place in its page; the record is sealed
      // right there.
      if ((rc = mdb_put(txn.get(), env_->log, &key, &value,
                        (appending ? MDB_APPEND : 0) | MDB_RESERVE)) != 0) {
        return lmdb_error(file_, "append entry " + std::to_string(e.index.value()), rc);
      }
      records::seal_entry_at(static_cast<char*>(value.mv_data), k, e.term, e.kind, e.data);
    }
    new_last = entries.back().index;
    if (new_first > from) new_first = from;
  }

  if (w.hard_state) {
    std::string sealed = seal(kHardStateKey, records::hard_state_body(*w.hard_state));
    MDB_val key = as_val(kHardStateKey);
    MDB_val value = as_val(sealed);
    if ((rc = mdb_put(txn.get(), env_->meta, &key, &value, 0)) != 0) {
      return lmdb_error(file_, "write hard state", rc);
    }
  }

  cursor.close();
  if ((rc = txn.commit()) != 0) return lmdb_error(file_, "commit", rc);
  pending_written();
  first_ = new_first;
  last_ = new_last;
  if (w.hard_state) hard_state_ = w.hard_state;
  // What this write may have brought into the map: its entries, and the
  // pages its transaction read to copy them on write (the path down each
  // B-tree it changed, and LMDB's free list), new pages at every commit.
  appended_since_release_ += map_pages_read_per_write * page_bytes_;
  for (const LogEntryRef& e : entries)
    appended_since_release_ += records::sealed_entry_bytes(e.data.size());
  bool release = map_release_bytes_ > 0 && appended_since_release_ >= map_release_bytes_;
  if (w.snapshot) {
    snapshot_ = w.snapshot;
    if (lowest && *lowest <= snapshot_->index) covered_from_ = lowest;
    // Otherwise compact_covered() does, once it has dropped them.
    if (!covered_from_) release = true;
  }
  if (release) release_map_pages();
  return Status();
}

void LmdbLogStore::release_map_pages() {
  appended_since_release_ = 0;
  MDB_envinfo info;
  MDB_stat st;
  if (env_->map == nullptr || mdb_env_info(env_->env, &info) != 0 ||
      mdb_env_stat(env_->env, &st) != 0) {
    return;
  }
  const std::size_t bytes = (info.me_last_pgno + 1) * st.ms_psize;
  // Advice only: on failure the pages simply stay.
  (void)::madvise(env_->map, std::min(bytes, env_->map_bytes), MADV_DONTNEED);
}

Status LmdbLogStore::compact(LogIndex through) {
  if (through < first_ && (!covered_from_ || through < *covered_from_)) return Status();
  COORD_ASSERT(through <= last_, "cannot compact past the last entry ", last_);
  Txn txn(env_->env, false);
  if (txn.begin_rc() != 0) return lmdb_error(file_, "begin", txn.begin_rc());
  Cursor cursor(txn.get(), env_->log);
  if (cursor.open_rc() != 0) return lmdb_error(file_, "open cursor", cursor.open_rc());
  // The journal's waiting entries that this drops never reach LMDB: a
  // full map takes a compaction in all the same.
  COORD_RETURN_IF_ERROR(put_pending(txn.get(), cursor.get(), through));
  if (int rc = drop_entries(cursor.get(), through, true); rc != 0) {
    return lmdb_error(file_, "compact", rc);
  }
  cursor.close();
  if (int rc = txn.commit(); rc != 0) return lmdb_error(file_, "commit", rc);
  pending_written();
  if (through >= first_) first_ = through.next();
  COORD_RETURN_IF_ERROR(find_covered());
  release_map_pages();
  return Status();
}

Result<bool> LmdbLogStore::compact_covered(std::size_t entries_max, std::size_t bytes_max) {
  if (!covered_from_) return false;
  COORD_ASSERT(entries_max > 0, "a compaction chunk drops at least one entry");
  const LogIndex through = snapshot_->index;
  Txn txn(env_->env, false);
  if (txn.begin_rc() != 0) return lmdb_error(file_, "begin", txn.begin_rc());
  Cursor cursor(txn.get(), env_->log);
  if (cursor.open_rc() != 0) return lmdb_error(file_, "open cursor", cursor.open_rc());
  std::string k = index_key(*covered_from_);
  MDB_val key = as_val(k);
  MDB_val value;
  std::size_t dropped = 0;
  std::size_t bytes = 0;
  std::optional<LogIndex> rest;
  int rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_SET_RANGE);
  while (rc == 0) {
    if (key.mv_size != records::index_key_bytes) {
      return Status(ErrorCode::DataInconsistency, file_ + ": log key of bad size");
    }
    const LogIndex at(get_be64(static_cast<const unsigned char*>(key.mv_data)));
    if (at > through) break;
    // The size of a large value is in its leaf node: its pages are not read.
    if (dropped == entries_max || (dropped > 0 && bytes + value.mv_size > bytes_max)) {
      rest = at;
      break;
    }
    bytes += value.mv_size;
    if ((rc = mdb_cursor_del(cursor.get(), 0)) != 0) break;
    ++dropped;
    // After mdb_cursor_del, MDB_NEXT yields the entry that followed.
    rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(file_, "compact", rc);
  cursor.close();
  if ((rc = txn.commit()) != 0) return lmdb_error(file_, "commit", rc);
  covered_from_ = rest;
  if (!rest) release_map_pages();
  return rest.has_value();
}

static Result<LogRecord> decode_entry(const std::string& file, const MDB_val& key,
                                      const MDB_val& value) {
  auto r = records::decode_entry(as_view(key), as_view(value));
  if (!r.ok()) return Status(r.code(), file + ": " + r.status().message());
  return r;
}

Result<LogRecord> LmdbLogStore::entry(LogIndex index) const {
  {
    std::lock_guard lock(pending_mu_);
    if (!pending_.empty() && index >= pending_.front().index) {
      if (index > pending_.back().index) {
        return Status(ErrorCode::NoNode, "log entry " + std::to_string(index.value()));
      }
      return pending_entry(pending_[index.value() - pending_.front().index.value()]);
    }
  }
  Txn txn(env_->env, true);
  if (txn.begin_rc() != 0) return lmdb_error(file_, "begin", txn.begin_rc());
  std::string k = index_key(index);
  MDB_val key = as_val(k);
  MDB_val value;
  int rc = mdb_get(txn.get(), env_->log, &key, &value);
  if (rc == MDB_NOTFOUND) {
    return Status(ErrorCode::NoNode, "log entry " + std::to_string(index.value()));
  }
  if (rc != 0) return lmdb_error(file_, "read entry", rc);
  return decode_entry(file_, key, value);
}

Result<std::vector<LogRecord>> LmdbLogStore::entries(LogIndex lo, LogIndex hi,
                                                     std::size_t max_bytes) const {
  std::vector<LogRecord> out;
  if (lo >= hi) return out;
  // Held throughout, so that a checkpoint cannot move entries from the
  // journal's side to LMDB's between the two reads.
  std::lock_guard lock(pending_mu_);
  std::size_t bytes = 0;
  // The journal's entries replace any stored from the first of them on.
  const LogIndex split = pending_.empty() ? hi : std::min(hi, pending_.front().index);
  auto from_journal = [&]() -> Result<std::vector<LogRecord>> {
    if (pending_.empty() || (!out.empty() && bytes >= max_bytes)) return std::move(out);
    const LogIndex first = pending_.front().index;
    for (LogIndex i = std::max(lo, first); i < hi && i <= pending_.back().index; i = i.next()) {
      auto e = pending_entry(pending_[i.value() - first.value()]);
      if (!e.ok()) return e.status();
      bytes += e->data.size();
      out.push_back(std::move(e).value());
      if (bytes >= max_bytes) break;
    }
    return std::move(out);
  };
  if (lo >= split) return from_journal();
  Txn txn(env_->env, true);
  if (txn.begin_rc() != 0) return lmdb_error(file_, "begin", txn.begin_rc());
  Cursor cursor(txn.get(), env_->log);
  if (cursor.open_rc() != 0) return lmdb_error(file_, "open cursor", cursor.open_rc());
  std::string k = index_key(lo);
  MDB_val key = as_val(k);
  MDB_val value;
  int rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_SET_RANGE);
  while (rc == 0) {
    if (key.mv_size != records::index_key_bytes) {
      return Status(ErrorCode::DataInconsistency, file_ + ": log key of bad size");
    }
    const LogIndex at(get_be64(static_cast<const unsigned char*>(key.mv_data)));
    if (at >= split) break;
    auto e = decode_entry(file_, key, value);
    if (!e.ok()) return e.status();
    bytes += e->data.size();
    out.push_back(std::move(e).value());
    if (bytes >= max_bytes) break;
    rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(file_, "read entries", rc);
  return from_journal();
}

std::size_t LmdbLogStore::used_bytes() const {
  MDB_envinfo info;
  MDB_stat st;
  if (mdb_env_info(env_->env, &info) != 0 || mdb_env_stat(env_->env, &st) != 0) return 0;
  return (info.me_last_pgno + 1) * st.ms_psize;
}

Status LmdbLogStore::corrupt_entry_for_testing(LogIndex index, std::string raw_value) {
  COORD_RETURN_IF_ERROR(checkpoint());
  Txn txn(env_->env, false);
  if (txn.begin_rc() != 0) return lmdb_error(file_, "begin", txn.begin_rc());
  std::string k = index_key(index);
  MDB_val key = as_val(k);
  MDB_val value = as_val(raw_value);
  int rc = mdb_put(txn.get(), env_->log, &key, &value, 0);
  if (rc != 0) return lmdb_error(file_, "put", rc);
  if ((rc = txn.commit()) != 0) return lmdb_error(file_, "commit", rc);
  return Status();
}

}  // namespace coord::io
