using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Hosting;

namespace ZeroFL.Cluster;

/// <summary>
/// Builds a ZeroFL silo: Orleans development clustering (the primary silo, the one started without
/// a silo to join, keeps the membership table; no external service), one <see cref="FitWorkerGrain"/>
/// placed on it, and its <see cref="WorkerService"/> with the silo's device opened.
/// </summary>
public static class WorkerSilo
{
    /// <summary>
    /// A silo host listening on <paramref name="address"/> at <paramref name="siloPort"/> (silos) and
    /// <paramref name="gatewayPort"/> (the coordinator), joining the cluster whose primary silo is
    /// <paramref name="primary"/> (null: this silo is the primary). The worker's device is opened
    /// here: a device that is not there throws before anything listens.
    /// </summary>
    public static IHost Build(WorkerSettings settings, IPAddress address, int siloPort, int gatewayPort, IPEndPoint? primary)
    {
        var host = new HostBuilder()
            .UseOrleans(silo =>
            {
                silo.UseDevelopmentClustering(primary ?? new IPEndPoint(address, siloPort));
                silo.Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = ClusterEndpoint.ClusterId;
                    o.ServiceId = ClusterEndpoint.ClusterId;
                });
                silo.Configure<EndpointOptions>(o =>
                {
                    o.AdvertisedIPAddress = address;
                    o.SiloPort = siloPort;
                    o.GatewayPort = gatewayPort;
                    o.SiloListeningEndpoint = new IPEndPoint(address, siloPort);
                    o.GatewayListeningEndpoint = new IPEndPoint(address, gatewayPort);
                });
                silo.Configure<SiloOptions>(o => o.SiloName = settings.Name);
                silo.AddPlacementDirector<SiloPinnedPlacement, SiloPinnedPlacementDirector>();
                silo.Services.AddSingleton(settings);
                silo.Services.AddSingleton<WorkerService>();
            })
            .Build();
        try
        {
            _ = host.Services.GetRequiredService<WorkerService>();
        }
        catch
        {
            host.Dispose();
            throw;
        }
        return host;
    }

    /// <summary>Starts <paramref name="host"/>, giving up after <paramref name="timeout"/> with one line naming <paramref name="what"/>.</summary>
    public static async Task StartAsync(IHost host, TimeSpan timeout, string what)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await host.StartAsync(cancel.Token).WaitAsync(timeout + TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            throw new ClusterException($"{what}: not started after {timeout.TotalSeconds:F0} s");
        }
        catch (Exception e) when (e is not ClusterException)
        {
            throw new ClusterException($"{what}: {ClusterException.OneLine(e)}");
        }
    }
}

/// <summary>A cluster that cannot serve the run (no silo answers, a silo disagrees, none is left): one line for the user.</summary>
/// <param name="message">The line.</param>
public sealed class ClusterException(string message) : Exception(message)
{
    /// <summary>An exception (the innermost of an aggregate) as one line.</summary>
    public static string OneLine(Exception e)
    {
        while (e is AggregateException { InnerException: { } inner })
        {
            e = inner;
        }
        return e.Message.ReplaceLineEndings(" ");
    }
}
