using Orleans;

namespace ZeroFL.Cluster;

/// <summary>
/// The worker of one silo (one activation per silo, pinned there by <see cref="SiloPinnedPlacementAttribute"/>;
/// its key is the silo's address). It owns the silo's device, one training slot and the silo's copy
/// of the training set. Calls are answered one at a time, in order.
/// </summary>
public interface IFitWorker : IGrainWithStringKey
{
    /// <summary>Loads the run's training set (from the silo's data directory) and builds the slot; says why not when the silo disagrees with the coordinator.</summary>
    [ResponseTimeout("00:30:00")]
    Task<WorkerReady> Configure(WorkerConfiguration configuration);

    /// <summary>Receives one piece of the global model; true once the whole block arrived and matched its SHA-256.</summary>
    [ResponseTimeout("00:05:00")]
    Task<bool> PutModel(ModelChunk chunk);

    /// <summary>Trains one client from the global model and encodes its upload on the worker's device.</summary>
    [ResponseTimeout("02:00:00")]
    Task<FitReply> Fit(FitOrder order);

    /// <summary>Bytes [offset, offset + count) of the last client's encoded upload.</summary>
    [ResponseTimeout("00:05:00")]
    Task<byte[]> ReadUpload(int clientId, int offset, int count);
}
