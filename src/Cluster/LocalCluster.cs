using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting;

namespace ZeroFL.Cluster;

/// <summary>
/// N silos inside this process (<c>zerofl run --silos N</c>), each a real Orleans silo on a free
/// loopback port pair with its own worker and device; the first is the primary. For tests and for a
/// machine with several GPUs (one per silo).
/// </summary>
public sealed class LocalCluster : IAsyncDisposable
{
    private readonly List<IHost> hosts;

    private LocalCluster(List<IHost> hosts, ClusterEndpoint[] silos)
    {
        this.hosts = hosts;
        Silos = silos;
    }

    /// <summary>The silos' addresses (silo port PORT, gateway PORT + 1), the primary first.</summary>
    public IReadOnlyList<ClusterEndpoint> Silos { get; }

    /// <summary>The silos' gateways (what a coordinator connects to).</summary>
    public IReadOnlyList<IPEndPoint> Gateways => Silos.Select(s => s.Gateway).ToList();

    /// <summary>Silos started.</summary>
    public int Count => hosts.Count;

    /// <summary>
    /// Starts <paramref name="count"/> silos, silo i with <paramref name="settings"/>(i, its name
    /// "127.0.0.1:PORT"), the primary first, each within <paramref name="timeout"/>. Testing: with
    /// <paramref name="killLastInRound"/> above 0 the last silo dies (<see cref="Kill"/>) as it
    /// starts training a client of that round.
    /// </summary>
    public static async Task<LocalCluster> StartAsync(int count, Func<int, string, WorkerSettings> settings, TimeSpan timeout, int killLastInRound = 0)
    {
        var ports = FreePortPairs(count);
        var hosts = new List<IHost>();
        var endpoints = ports.Select(p => new ClusterEndpoint(IPAddress.Loopback, p)).ToArray();
        var cluster = new LocalCluster(hosts, endpoints);
        try
        {
            for (int i = 0; i < count; i++)
            {
                var silo = settings(i, endpoints[i].ToString());
                if (killLastInRound > 0 && i == count - 1 && count > 1)
                {
                    int index = i;
                    silo = silo with { BeforeFit = round => round == killLastInRound ? cluster.Die(index) : Task.CompletedTask };
                }
                hosts.Add(WorkerSilo.Build(silo, IPAddress.Loopback, endpoints[i].Port, endpoints[i].Port + 1, i == 0 ? null : endpoints[0].Silo));
            }
            await WorkerSilo.StartAsync(hosts[0], timeout, "silo 0 of the local cluster");
            await Task.WhenAll(hosts.Skip(1).Select((h, i) => WorkerSilo.StartAsync(h, timeout, $"silo {i + 1} of the local cluster")));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Stops silo <paramref name="index"/> within two seconds, without waiting for its calls to end
    /// (they never answer): it leaves the membership table and closes its connections.
    /// </summary>
    public void Kill(int index)
    {
        var host = hosts[index];
        _ = Task.Run(async () =>
        {
            using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await host.StopAsync(bound.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                // stopped ungracefully after the bound
            }
        });
    }

    /// <summary>Kills silo <paramref name="index"/> from inside one of its calls, which then never answers (it gives up after two minutes).</summary>
    private async Task Die(int index)
    {
        Kill(index);
        await Task.Delay(TimeSpan.FromMinutes(2));
        throw new InvalidOperationException($"silo {index} was killed");
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var host in Enumerable.Reverse(hosts))
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await host.StopAsync(cancel.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or InvalidOperationException)
            {
                // a silo that never started or was killed
            }
            host.Dispose();
        }
        hosts.Clear();
    }

    /// <summary><paramref name="count"/> free loopback port pairs (PORT, PORT + 1), the convention of <see cref="ClusterEndpoint"/>; held open together while chosen.</summary>
    internal static int[] FreePortPairs(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            var ports = new List<int>();
            for (int tries = 0; ports.Count < count; tries++)
            {
                if (tries > 1000)
                {
                    throw new ClusterException("no free pair of adjacent loopback ports");
                }
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                listeners.Add(listener);
                int port = ((IPEndPoint)listener.LocalEndpoint).Port;
                if (port >= 65535 || ports.Contains(port) || ports.Contains(port - 1))
                {
                    continue;
                }
                var next = new TcpListener(IPAddress.Loopback, port + 1);
                try
                {
                    next.Start();
                }
                catch (SocketException)
                {
                    continue;
                }
                listeners.Add(next);
                ports.Add(port);
            }
            return [.. ports];
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Stop();
            }
        }
    }
}
