#include <gtest/gtest.h>

#include <set>
#include <string>
#include <unordered_set>

#include "coord/base/checksum.h"
#include "coord/base/clock.h"
#include "coord/base/error.h"
#include "coord/base/ids.h"
#include "coord/base/limits.h"
#include "coord/base/random.h"
#include "coord/base/status.h"
#include "coord/base/zk_types.h"

namespace coord {
namespace {

TEST(ErrorCode, CarriesZooKeeperWireValues) {
  EXPECT_EQ(to_int(ErrorCode::Ok), 0);
  EXPECT_EQ(to_int(ErrorCode::SystemError), -1);
  EXPECT_EQ(to_int(ErrorCode::RuntimeInconsistency), -2);
  EXPECT_EQ(to_int(ErrorCode::ConnectionLoss), -4);
  EXPECT_EQ(to_int(ErrorCode::MarshallingError), -5);
  EXPECT_EQ(to_int(ErrorCode::Unimplemented), -6);
  EXPECT_EQ(to_int(ErrorCode::OperationTimeout), -7);
  EXPECT_EQ(to_int(ErrorCode::BadArguments), -8);
  EXPECT_EQ(to_int(ErrorCode::NoNode), -101);
  EXPECT_EQ(to_int(ErrorCode::NoAuth), -102);
  EXPECT_EQ(to_int(ErrorCode::BadVersion), -103);
  EXPECT_EQ(to_int(ErrorCode::NoChildrenForEphemerals), -108);
  EXPECT_EQ(to_int(ErrorCode::NodeExists), -110);
  EXPECT_EQ(to_int(ErrorCode::NotEmpty), -111);
  EXPECT_EQ(to_int(ErrorCode::SessionExpired), -112);
  EXPECT_EQ(to_int(ErrorCode::InvalidAcl), -114);
  EXPECT_EQ(to_int(ErrorCode::AuthFailed), -115);
  EXPECT_EQ(to_int(ErrorCode::SessionMoved), -118);
  EXPECT_EQ(to_int(ErrorCode::NoWatcher), -121);
  EXPECT_EQ(to_int(ErrorCode::ReconfigDisabled), -123);
  EXPECT_EQ(to_int(ErrorCode::Throttled), -127);
}

TEST(ErrorCode, NamesAndWireValuesRoundTrip) {
  EXPECT_EQ(error_name(ErrorCode::NoNode), "NoNode");
  EXPECT_EQ(error_name(ErrorCode::BadVersion), "BadVersion");
  EXPECT_EQ(error_name(static_cast<ErrorCode>(-9999)), "Unknown");
  for (int v = -130; v <= 0; ++v) {
    auto code = error_from_int(v);
    if (code) {
      EXPECT_EQ(to_int(*code), v);
      EXPECT_NE(error_name(*code), "Unknown");
    }
  }
  EXPECT_FALSE(error_from_int(-126).has_value());
  EXPECT_FALSE(error_from_int(5).has_value());
}

TEST(Status, OkByDefaultAndCarriesMessage) {
  Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.to_string(), "Ok");
  Status err(ErrorCode::NoNode, "/a/b");
  EXPECT_FALSE(err.ok());
  EXPECT_EQ(err.code(), ErrorCode::NoNode);
  EXPECT_EQ(err.to_string(), "NoNode: /a/b");
  EXPECT_TRUE(err == ErrorCode::NoNode);
}

Status fails_then_stops(bool fail, int* reached) {
  COORD_RETURN_IF_ERROR(fail ? Status(ErrorCode::BadArguments) : Status());
  ++*reached;
  return Status();
}

TEST(Status, ReturnIfErrorStopsAtTheFirstError) {
  int reached = 0;
  EXPECT_EQ(fails_then_stops(true, &reached).code(), ErrorCode::BadArguments);
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(fails_then_stops(false, &reached).ok());
  EXPECT_EQ(reached, 1);
}

TEST(Result, HoldsValueOrError) {
  Result<std::string> good(std::string("x"));
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, "x");
  EXPECT_EQ(good->size(), 1u);
  EXPECT_EQ(good.code(), ErrorCode::Ok);

  Result<std::string> bad(ErrorCode::NodeExists);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), ErrorCode::NodeExists);
  EXPECT_EQ(bad.value_or("fallback"), "fallback");
}

TEST(ResultDeathTest, ValueOfFailedResultAborts) {
  Result<int> bad(ErrorCode::NoNode);
  EXPECT_DEATH({ [[maybe_unused]] int v = bad.value(); }, "value\\(\\) of a failed Result");
}

TEST(AssertDeathTest, StaysOnAndNamesTheCondition) {
  EXPECT_DEATH(COORD_ASSERT(1 + 1 == 3, "math is ", "broken"), "1 \\+ 1 == 3.*math is broken");
}

TEST(StrongInt, ComparesAndSteps) {
  LogIndex a(5);
  LogIndex b = a.next();
  EXPECT_LT(a, b);
  EXPECT_EQ(b.value(), 6u);
  EXPECT_EQ(b - a, 1u);
  EXPECT_EQ((a + 10).value(), 15u);
  std::unordered_set<Term> terms{Term(1), Term(2), Term(1)};
  EXPECT_EQ(terms.size(), 2u);
  static_assert(!std::is_convertible_v<Term, LogIndex>, "strong types must not mix");
  static_assert(!std::is_convertible_v<std::uint64_t, Term>, "no implicit construction");
}

TEST(ManualClock, MovesOnlyWhenTold) {
  ManualClock clock(TimeMs(1000), TimeMs(5));
  EXPECT_EQ(clock.wall_ms(), TimeMs(1000));
  EXPECT_EQ(clock.steady_ms(), TimeMs(5));
  clock.advance_ms(250);
  EXPECT_EQ(clock.wall_ms(), TimeMs(1250));
  EXPECT_EQ(clock.steady_ms(), TimeMs(255));
}

TEST(SystemClock, SteadyNeverGoesBack) {
  SystemClock clock;
  TimeMs a = clock.steady_ms();
  TimeMs b = clock.steady_ms();
  EXPECT_LE(a, b);
  EXPECT_GT(clock.wall_ms().value(), 1'600'000'000'000);  // after 2020
}

TEST(OffsetWallClock, ShiftsOnlyTheWallClock) {
  SystemClock system;
  OffsetWallClock clock;
  EXPECT_EQ(clock.offset_ms(), 0);
  constexpr std::int64_t hour_ms = 3'600'000;
  for (const std::int64_t offset : {hour_ms, -hour_ms}) {
    clock.set_offset_ms(offset);
    const std::int64_t before = system.wall_ms().value();
    const std::int64_t shifted = clock.wall_ms().value();
    const std::int64_t after = system.wall_ms().value();
    EXPECT_GE(shifted, before + offset);
    EXPECT_LE(shifted, after + offset);
    // Steady time is the machine's whatever the offset: it never leaps.
    const TimeMs s0 = system.steady_ms();
    const TimeMs s1 = clock.steady_ms();
    const TimeMs s2 = system.steady_ms();
    EXPECT_LE(s0, s1);
    EXPECT_LE(s1, s2);
  }
}

TEST(Random, SameSeedSameSequence) {
  Random a(42);
  Random b(42);
  Random c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    std::uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    differs |= x != c.next_u64();
  }
  EXPECT_TRUE(differs);
}

TEST(Random, UniformStaysInRangeAndCoversIt) {
  Random r(7);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 10'000; ++i) {
    std::uint64_t v = r.uniform(3, 9);
    ASSERT_GE(v, 3u);
    ASSERT_LE(v, 9u);
    seen.insert(v);
    double u = r.unit();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_FALSE(r.chance(0, 5));
  EXPECT_TRUE(r.chance(5, 5));
}

TEST(Crc32c, TheInstructionAndTheTablesAgree) {
  // Every length from 0 to 100 at every alignment of an 8-byte word, and
  // extended from nonzero starting values: the two paths must give the
  // same value wherever a record was written and wherever it is read.
  Random rnd(3);
  std::string bytes(128, '\0');
  for (auto& b : bytes)
    b = static_cast<char>(rnd.below(256));
  for (std::size_t offset = 0; offset < 8; ++offset) {
    for (std::size_t len = 0; offset + len <= 100; ++len) {
      const std::uint32_t start = static_cast<std::uint32_t>(rnd.next_u64());
      EXPECT_EQ(crc32c_extend(start, bytes.data() + offset, len),
                crc32c_extend_portable(start, bytes.data() + offset, len))
          << "offset " << offset << " length " << len;
    }
  }
  EXPECT_EQ(crc32c_extend_portable(0, "123456789", 9), 0xe3069283u);
  if (!crc32c_hardware_available()) GTEST_SKIP() << "no CRC-32C instruction on this processor";
}

TEST(Crc32c, MatchesKnownVectors) {
  // Check values from RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(crc32c("123456789"), 0xe3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros), 0x8a9136aau);
  std::string ones(32, '\xff');
  EXPECT_EQ(crc32c(ones), 0x62a8ab43u);
  std::string text = "a longer text, split anywhere, gives the same checksum";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    EXPECT_EQ(crc32c_extend(crc32c(text.data(), cut), text.data() + cut, text.size() - cut),
              crc32c(text));
  }
}

TEST(Limits, AreConsistent) {
  static_assert(limits::frame_bytes_max == 0xfffff);
  static_assert(limits::znode_data_bytes_max == 1024 * 1024);
  static_assert(limits::session_timeout_ms_min_default < limits::session_timeout_ms_max_default);
  static_assert(limits::znode_ttl_ms_min < limits::znode_ttl_ms_max);
  EXPECT_EQ(limits::session_password_bytes, 16u);
}

TEST(ZkTypes, CreateModesMatchTheWire) {
  EXPECT_EQ(create_mode_from_int(0), CreateMode::Persistent);
  EXPECT_EQ(create_mode_from_int(6), CreateMode::PersistentSequentialWithTtl);
  EXPECT_FALSE(create_mode_from_int(7).has_value());
  EXPECT_FALSE(create_mode_from_int(-1).has_value());
  EXPECT_TRUE(is_ephemeral(CreateMode::EphemeralSequential));
  EXPECT_TRUE(is_sequential(CreateMode::PersistentSequentialWithTtl));
  EXPECT_TRUE(is_ttl(CreateMode::PersistentWithTtl));
  EXPECT_FALSE(is_ephemeral(CreateMode::Container));
  EXPECT_EQ(perm::all, 31);
  EXPECT_EQ(open_acl_unsafe().front().id.scheme, "world");
  EXPECT_EQ(creator_all_acl().front().id.scheme, "auth");
  EXPECT_EQ(read_acl_unsafe().front().perms, perm::read);
  EXPECT_EQ(event_type_name(EventType::NodeChildrenChanged), "NodeChildrenChanged");
  EXPECT_EQ(static_cast<int>(KeeperState::Expired), -112);
}

}  // namespace
}  // namespace coord

namespace coord {
namespace {

TEST(PermLetters, RoundTripInZkClisOrder) {
  EXPECT_EQ(perm::to_letters(perm::all), "cdrwa");
  EXPECT_EQ(perm::to_letters(perm::read | perm::admin), "ra");
  EXPECT_EQ(perm::to_letters(0), "");
  EXPECT_EQ(perm::from_letters("rwcda"), perm::all);
  EXPECT_EQ(perm::from_letters("ar"), perm::read | perm::admin);
  EXPECT_EQ(perm::from_letters(""), 0);
  EXPECT_EQ(perm::from_letters("rx"), std::nullopt);
}

}  // namespace
}  // namespace coord
