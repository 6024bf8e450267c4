using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;

namespace ZeroFL.Cluster;

/// <summary>
/// The coordinator's connection to a cluster: an Orleans client on the silos' gateways and, for
/// <c>run --silos N</c>, the <see cref="LocalCluster"/> it started in this process.
/// </summary>
public sealed class ClusterSession : IDisposable
{
    private readonly IHost clientHost;

    private ClusterSession(IHost clientHost, LocalCluster? local, string description, int expectedSilos)
    {
        this.clientHost = clientHost;
        Local = local;
        Description = description;
        ExpectedSilos = expectedSilos;
    }

    /// <summary>The client.</summary>
    public IClusterClient Client => clientHost.Services.GetRequiredService<IClusterClient>();

    /// <summary>The silos started in this process, if any.</summary>
    public LocalCluster? Local { get; }

    /// <summary>What the coordinator is connected to, for the progress line.</summary>
    public string Description { get; }

    /// <summary>Silos to wait for before the first round (all local ones; 1 for a remote cluster).</summary>
    public int ExpectedSilos { get; }

    /// <summary>Starts <paramref name="silos"/> silos in this process (<see cref="LocalCluster"/>) and connects to them.</summary>
    public static ClusterSession StartLocal(int silos, Func<int, string, WorkerSettings> settings, TimeSpan timeout, int killLastInRound = 0)
    {
        var local = LocalCluster.StartAsync(silos, settings, timeout, killLastInRound).GetAwaiter().GetResult();
        try
        {
            var client = ConnectAsync([.. local.Gateways], timeout, "the local cluster").GetAwaiter().GetResult();
            return new ClusterSession(client, local, $"{silos} silos in this process", silos);
        }
        catch
        {
            local.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
    }

    /// <summary>Connects to the cluster of the silo at <paramref name="endpoint"/> (its gateway, PORT + 1), within <paramref name="timeout"/>.</summary>
    public static ClusterSession Connect(ClusterEndpoint endpoint, TimeSpan timeout)
    {
        var client = ConnectAsync([endpoint.Gateway], timeout, $"no silo answers at {endpoint} (gateway port {endpoint.Port + 1})").GetAwaiter().GetResult();
        return new ClusterSession(client, null, $"the cluster of {endpoint}", 1);
    }

    /// <summary>Tries to reach a gateway before the connection counts as failed (a second apart).</summary>
    private const int ConnectAttempts = 5;

    private static async Task<IHost> ConnectAsync(IPEndPoint[] gateways, TimeSpan timeout, string what)
    {
        var host = new HostBuilder()
            .UseOrleansClient(client =>
            {
                client.UseStaticClustering(gateways);
                int attempts = 0;
                client.UseConnectionRetryFilter(async (_, cancel) =>
                {
                    // A silo still starting gets a few seconds; an address nobody answers fails soon.
                    if (++attempts > ConnectAttempts)
                    {
                        return false;
                    }
                    await Task.Delay(TimeSpan.FromSeconds(1), cancel);
                    return true;
                });
                client.Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = ClusterEndpoint.ClusterId;
                    o.ServiceId = ClusterEndpoint.ClusterId;
                });
            })
            .Build();
        try
        {
            await WorkerSilo.StartAsync(host, timeout, what);
            return host;
        }
        catch
        {
            host.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        using (var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            try
            {
                clientHost.StopAsync(cancel.Token).GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                // the cluster is gone already
            }
        }
        clientHost.Dispose();
        Local?.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
