// A Java peer driven by the recipe tests: Apache Curator's own recipes on
// the same paths as coord's, so the tests can check that they interoperate.
//
//   CuratorPeer lock SERVERS PATH COUNTER_FILE ITERATIONS
//   CuratorPeer latch SERVERS PATH ID          (prints "leader" / "follower"; stdin EOF ends it)
//   CuratorPeer register SERVERS BASE NAME ID ADDRESS PORT   (stdin EOF deregisters)
//   CuratorPeer discover SERVERS BASE NAME      (prints "instances: id,id,..." at each change)
//   CuratorPeer dump SERVERS BASE NAME ID ADDRESS PORT       (prints the JSON Curator writes)
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.x.discovery.ServiceCache;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.apache.curator.x.discovery.details.ServiceCacheListener;

public class CuratorPeer {
  static CuratorFramework connect(String servers) throws Exception {
    CuratorFramework c = CuratorFrameworkFactory.builder().connectString(servers)
        .sessionTimeoutMs(4000).connectionTimeoutMs(10000)
        .retryPolicy(new ExponentialBackoffRetry(100, 5)).build();
    c.start();
    if (!c.blockUntilConnected(30, TimeUnit.SECONDS)) throw new IllegalStateException("no server");
    return c;
  }

  static void waitForStdinEof() throws Exception {
    while (System.in.read() >= 0) {}
  }

  @SuppressWarnings("unchecked")
  static ServiceDiscovery<Map> discovery(CuratorFramework c, String base, ServiceInstance<Map> self)
      throws Exception {
    ServiceDiscoveryBuilder<Map> b = ServiceDiscoveryBuilder.builder(Map.class).client(c).basePath(base)
        .serializer(new JsonInstanceSerializer<>(Map.class));
    if (self != null) b = b.thisInstance(self);
    ServiceDiscovery<Map> d = b.build();
    d.start();
    return d;
  }

  static ServiceInstance<Map> instance(String[] a) throws Exception {
    Map<String, String> payload = new TreeMap<>();
    payload.put("zone", "java");
    return ServiceInstance.<Map>builder().name(a[3]).id(a[4]).address(a[5])
        .port(Integer.parseInt(a[6])).payload(payload).build();
  }

  public static void main(String[] a) throws Exception {
    if (a[0].equals("dump")) {
      System.out.println(new String(new JsonInstanceSerializer<>(Map.class).serialize(instance(a)),
          StandardCharsets.UTF_8));
      return;
    }
    CuratorFramework c = connect(a[1]);
    switch (a[0]) {
      case "lock": {
        InterProcessMutex m = new InterProcessMutex(c, a[2]);
        Path counter = Path.of(a[3]);
        int n = Integer.parseInt(a[4]);
        for (int i = 0; i < n; ++i) {
          if (!m.acquire(120, TimeUnit.SECONDS)) throw new IllegalStateException("lock timeout");
          String s = Files.exists(counter) ? Files.readString(counter).trim() : "";
          long v = s.isEmpty() ? 0 : Long.parseLong(s);
          Thread.sleep(2);
          Files.writeString(counter, (v + 1) + "\n");
          m.release();
        }
        break;
      }
      case "latch": {
        LeaderLatch l = new LeaderLatch(c, a[2], a[3]);
        l.addListener(new LeaderLatchListener() {
          public void isLeader() { System.out.println("leader"); System.out.flush(); }
          public void notLeader() { System.out.println("follower"); System.out.flush(); }
        });
        l.start();
        System.out.println("started"); System.out.flush();
        waitForStdinEof();
        l.close();
        break;
      }
      case "register": {
        ServiceDiscovery<Map> d = discovery(c, a[2], instance(a));
        System.out.println("registered"); System.out.flush();
        waitForStdinEof();
        d.close();
        break;
      }
      case "discover": {
        ServiceDiscovery<Map> d = discovery(c, a[2], null);
        ServiceCache<Map> cache = d.serviceCacheBuilder().name(a[3]).build();
        Runnable print = () -> {
          List<String> ids = new ArrayList<>();
          for (ServiceInstance<Map> i : cache.getInstances())
            ids.add(i.getId() + "@" + i.getAddress() + ":" + i.getPort());
          Collections.sort(ids);
          System.out.println("instances: " + String.join(",", ids));
          System.out.flush();
        };
        cache.addListener(new ServiceCacheListener() {
          public void cacheChanged() { print.run(); }
          public void stateChanged(CuratorFramework cf, org.apache.curator.framework.state.ConnectionState s) {}
        });
        cache.start();
        print.run();
        waitForStdinEof();
        cache.close();
        d.close();
        break;
      }
      default:
        throw new IllegalArgumentException("unknown mode " + a[0]);
    }
    c.close();
  }
}
