using Orleans;

namespace ZeroFL.Cluster;

/// <summary>
/// What a coordinator tells a worker before the first round: the run's command line (parsed on the
/// silo by the same code as on the coordinator, with the silo's own data directory) and the facts
/// both sides must agree on.
/// </summary>
/// <param name="RunArguments">The <c>zerofl run</c> command line.</param>
/// <param name="Dataset">The data set's name.</param>
/// <param name="DataFingerprint">SHA-256 of the training set as the coordinator loaded it (<see cref="RunFingerprint.Data"/>).</param>
/// <param name="LayoutFingerprint">SHA-256 of the model layout (<see cref="RunFingerprint.Layout"/>).</param>
[GenerateSerializer, Immutable]
public sealed record WorkerConfiguration(string[] RunArguments, string Dataset, string DataFingerprint, string LayoutFingerprint);

/// <summary>A worker's answer to <see cref="WorkerConfiguration"/>.</summary>
/// <param name="Silo">The silo's name.</param>
/// <param name="Device">The worker's device.</param>
/// <param name="Problem">Why the worker cannot serve this run (one line), or null when it is ready.</param>
[GenerateSerializer, Immutable]
public sealed record WorkerReady(string Silo, string Device, string? Problem);

/// <summary>One piece of the global model's values on their way to a worker.</summary>
/// <param name="Sha256">Hex SHA-256 of the whole value block (the model's version).</param>
/// <param name="TotalLength">Values in the whole block.</param>
/// <param name="Offset">Where this piece starts.</param>
/// <param name="Values">The piece.</param>
[GenerateSerializer, Immutable]
public sealed record ModelChunk(string Sha256, int TotalLength, int Offset, float[] Values);

/// <summary>One client to train (Flower's fit instructions for one client).</summary>
/// <param name="Round">1-based round.</param>
/// <param name="Attempt">0-based sample of the round.</param>
/// <param name="LearningRate">The round's learning rate.</param>
/// <param name="ClientId">The client.</param>
/// <param name="Train">Its training indices into the training set, ascending.</param>
/// <param name="ModelSha256">The global model it trains from (sent before with <see cref="ModelChunk"/>s).</param>
[GenerateSerializer, Immutable]
public sealed record FitOrder(int Round, int Attempt, float LearningRate, int ClientId, int[] Train, string ModelSha256);

/// <summary>A client's Fit as a worker reports it: metrics, the failure if any, and its encoded upload (<see cref="UploadCodec"/>).</summary>
/// <param name="ClientId">The client.</param>
/// <param name="Examples">Training examples.</param>
/// <param name="TrainLoss">Mean training loss.</param>
/// <param name="TrainFlops">FLOPs used.</param>
/// <param name="DenseTrainFlops">Dense-equivalent FLOPs.</param>
/// <param name="EncodeSeconds">Time spent encoding the upload on the worker's device.</param>
/// <param name="FailureKind">The failure's <see cref="ZeroFL.Federation.Simulation.FailureKind"/> as a number (a worker reports training failures and non-finite updates); ignored when <paramref name="Failure"/> is null.</param>
/// <param name="Failure">What happened when training failed, or null.</param>
/// <param name="UploadLength">Bytes of the encoded upload (0 when there is none).</param>
/// <param name="FirstChunk">Its first bytes (at most <see cref="ClusterLimits.ChunkBytes"/>); the rest is read with <see cref="IFitWorker.ReadUpload"/>.</param>
[GenerateSerializer, Immutable]
public sealed record FitReply(int ClientId, int Examples, double TrainLoss, double TrainFlops, double DenseTrainFlops, double EncodeSeconds, int FailureKind, string? Failure, int UploadLength, byte[] FirstChunk);
