using Orleans;

namespace ZeroFL.Cluster;

/// <summary>The grain behind <see cref="IFitWorker"/>: it hands each call to the silo's <see cref="WorkerService"/>, off Orleans' scheduler threads.</summary>
/// <param name="worker">The silo's worker state.</param>
[SiloPinnedPlacement]
public sealed class FitWorkerGrain(WorkerService worker) : Grain, IFitWorker
{
    /// <inheritdoc />
    public Task<WorkerReady> Configure(WorkerConfiguration configuration) => Task.Run(() => worker.Configure(configuration));

    /// <inheritdoc />
    public Task<bool> PutModel(ModelChunk chunk) => Task.Run(() => worker.PutModel(chunk));

    /// <inheritdoc />
    public async Task<FitReply> Fit(FitOrder order)
    {
        await worker.BeforeFit(order.Round);
        return await Task.Run(() => worker.Fit(order));
    }

    /// <inheritdoc />
    public Task<byte[]> ReadUpload(int clientId, int offset, int count) => Task.FromResult(worker.ReadUpload(clientId, offset, count));
}
