using Orleans;
using Orleans.Runtime;
using ZeroFL.Engine.Modules;
using ZeroFL.Federation.Partitioning;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Cluster;

/// <summary>Bounds on the coordinator's waits.</summary>
/// <param name="Fit">One client's training on a worker.</param>
/// <param name="Call">Any other call (model pieces, upload pieces, membership).</param>
/// <param name="Configure">A worker's configuration (it loads the training set).</param>
public sealed record ClusterTimeouts(TimeSpan Fit, TimeSpan Call, TimeSpan Configure)
{
    /// <summary>An hour per client, a minute per call, ten minutes to configure.</summary>
    public static ClusterTimeouts Default { get; } = new(TimeSpan.FromHours(1), TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(10));
}

/// <summary>A worker as the coordinator knows it.</summary>
/// <param name="Key">Its silo's address (the grain key).</param>
/// <param name="Silo">The silo's name.</param>
/// <param name="Device">The worker's device.</param>
public sealed record WorkerInfo(string Key, string Silo, string Device);

/// <summary>
/// The cluster backend of the round (the coordinator's side): at each sample it asks the cluster
/// which silos are active and configures any new one (a silo that joined since gets work now);
/// it spreads the sampled clients over the workers in a fixed way (sampled position i to worker
/// i mod W, workers in silo-address order), sends each worker the global model in 4 MiB pieces
/// (once per model version), has each train its clients one after another and reads their encoded
/// uploads back in pieces. Results are handed to the server in sampled order, so the server
/// validates and aggregates exactly as in process. Nothing from a worker is trusted: an upload that
/// does not decode, names another client or claims another example count is a malformed upload; a
/// worker that fails a call or does not answer in time is lost, and its clients not yet returned
/// become <see cref="FailureKind.WorkerLost"/> failures.
/// </summary>
public sealed class ClusterFit : IFitBackend
{
    private readonly IClusterClient client;
    private readonly bool holdResults;
    private readonly Partition partition;
    private readonly ClusterTimeouts timeouts;
    private readonly Action<string> warn;
    private readonly HashSet<string> lost = [];
    private readonly Dictionary<string, string> modelOf = [];
    private List<(WorkerInfo Info, IFitWorker Grain)> workers = [];
    private long bytesSent, bytesReceived;
    private WorkerConfiguration? configuration;
    private ModelLayout? layout;

    /// <summary>
    /// The backend over <paramref name="client"/>'s cluster; <see cref="Start"/> finds and configures
    /// the workers. With <paramref name="holdResults"/> a sample's results reach the server only once
    /// every worker has answered, so the coordinator's device stays idle while the workers train
    /// (for a CPU accelerator coordinator: its threads spin after each launch, taking cores from the
    /// workers); otherwise each result is handed on as soon as it and those before it are in.
    /// </summary>
    public ClusterFit(IClusterClient client, Partition partition, ClusterTimeouts timeouts, Action<string> warn, bool holdResults)
    {
        this.holdResults = holdResults;
        this.client = client;
        this.partition = partition;
        this.timeouts = timeouts;
        this.warn = warn;
    }

    /// <summary>The workers of the last sample, in spreading order.</summary>
    public IReadOnlyList<WorkerInfo> Workers => workers.Select(w => w.Info).ToList();

    /// <summary>Every worker that served this run (lost ones included), by silo address.</summary>
    public IReadOnlyDictionary<string, WorkerInfo> Served => served;

    private readonly Dictionary<string, WorkerInfo> served = [];

    /// <summary>Bytes the coordinator sent (model pieces).</summary>
    public long BytesSent => Interlocked.Read(ref bytesSent);

    /// <summary>Bytes the coordinator received (encoded uploads).</summary>
    public long BytesReceived => Interlocked.Read(ref bytesReceived);

    /// <summary>
    /// Waits (at most <paramref name="wait"/>) until at least <paramref name="silos"/> silos are
    /// active, then configures every worker for <paramref name="run"/> (the model's layout
    /// <paramref name="modelLayout"/>); a silo that disagrees with the coordinator throws
    /// <see cref="ClusterException"/> with its reason.
    /// </summary>
    public void Start(WorkerConfiguration run, ModelLayout modelLayout, int silos, TimeSpan wait)
    {
        configuration = run;
        layout = modelLayout;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            int active = ActiveSilos().Count;
            if (active >= silos)
            {
                break;
            }
            if (clock.Elapsed > wait)
            {
                throw new ClusterException($"{active} silos active after {wait.TotalSeconds:F0} s, {silos} expected");
            }
            Thread.Sleep(200);
        }
        Refresh(initial: true);
    }

    /// <inheritdoc />
    public IEnumerable<ClientResult> Fit(FitInstructions instructions, ParameterStore global)
    {
        if (configuration is null)
        {
            throw new InvalidOperationException("the cluster backend was not started");
        }
        Refresh(initial: false);
        var active = workers;
        if (active.Count == 0)
        {
            throw new ClusterException($"round {instructions.Round}: no worker is left in the cluster (lost: {string.Join(", ", lost)})");
        }
        var values = global.Download();
        string sha = RunFingerprint.Values(values);
        var clients = instructions.Clients;
        var slots = clients.Select(_ => new TaskCompletionSource<ClientResult>(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        using var cancel = new CancellationTokenSource();
        // A worker whose silo leaves the cluster is lost at once, whatever Orleans does with its pending call.
        var gone = active.Select(_ => CancellationTokenSource.CreateLinkedTokenSource(cancel.Token)).ToArray();
        _ = Task.Run(() => Watch(active, gone, cancel.Token));
        for (int w = 0; w < active.Count; w++)
        {
            var positions = Enumerable.Range(0, clients.Count).Where(i => i % active.Count == w).ToArray();
            var worker = active[w];
            var token = gone[w].Token;
            _ = Task.Run(() => Drive(worker.Info, worker.Grain, positions, instructions, values, sha, slots, token));
        }
        try
        {
            if (holdResults)
            {
                Task.WaitAll(slots.Select(slot => slot.Task));
            }
            for (int i = 0; i < clients.Count; i++)
            {
                yield return slots[i].Task.GetAwaiter().GetResult();
            }
        }
        finally
        {
            cancel.Cancel();
        }
    }

    /// <summary>One worker's share of a sample: the model if it lacks it, then its clients one by one.</summary>
    private async Task Drive(WorkerInfo info, IFitWorker grain, int[] positions, FitInstructions instructions, float[] values, string sha, TaskCompletionSource<ClientResult>[] slots, CancellationToken cancel)
    {
        int next = 0;
        try
        {
            await SendModel(info, grain, values, sha, cancel);
            for (; next < positions.Length; next++)
            {
                int id = instructions.Clients[positions[next]];
                var order = new FitOrder(instructions.Round, instructions.Attempt, instructions.LearningRate, id, partition.Clients[id].Train, sha);
                var reply = await grain.Fit(order).WaitAsync(timeouts.Fit, cancel);
                slots[positions[next]].TrySetResult(await Receive(info, grain, reply, id, cancel));
            }
        }
        catch (Exception e)
        {
            string detail = e switch
            {
                TimeoutException => $"silo {info.Silo}: no answer in time",
                OperationCanceledException when cancel.IsCancellationRequested => $"silo {info.Silo} left the cluster",
                _ => $"silo {info.Silo}: {ClusterException.OneLine(e)}",
            };
            lock (lost)
            {
                lost.Add(info.Key);
            }
            for (; next < positions.Length; next++)
            {
                int id = instructions.Clients[positions[next]];
                slots[positions[next]].TrySetResult(ClientResult.Failed(id, FailureKind.WorkerLost, detail));
            }
        }
    }

    /// <summary>Every <see cref="WatchInterval"/>, cancels <paramref name="gone"/>[w] once worker w's silo is no longer active (or the cluster stopped answering three times running).</summary>
    private async Task Watch(List<(WorkerInfo Info, IFitWorker Grain)> active, CancellationTokenSource[] gone, CancellationToken stop)
    {
        int silent = 0;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(WatchInterval, stop);
                var hosts = await client.GetGrain<IManagementGrain>(0).GetDetailedHosts(onlyActive: true).WaitAsync(timeouts.Call, stop);
                silent = 0;
                for (int w = 0; w < active.Count; w++)
                {
                    if (!hosts.Any(h => h.Status == SiloStatus.Active && h.SiloAddress.ToParsableString() == active[w].Info.Key))
                    {
                        gone[w].Cancel();
                    }
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception) when (++silent < 3)
            {
                // asked again at the next tick
            }
            catch (Exception)
            {
                foreach (var source in gone)
                {
                    source.Cancel();
                }
                return;
            }
        }
    }

    /// <summary>How often a sample in progress asks the cluster which silos are still active.</summary>
    private static readonly TimeSpan WatchInterval = TimeSpan.FromSeconds(2);

    private async Task SendModel(WorkerInfo info, IFitWorker grain, float[] values, string sha, CancellationToken cancel)
    {
        lock (modelOf)
        {
            if (modelOf.GetValueOrDefault(info.Key) == sha)
            {
                return;
            }
        }
        bool complete = false;
        for (int offset = 0; offset < values.Length; offset += ClusterLimits.ChunkValues)
        {
            int count = Math.Min(ClusterLimits.ChunkValues, values.Length - offset);
            complete = await grain.PutModel(new ModelChunk(sha, values.Length, offset, values[offset..(offset + count)])).WaitAsync(timeouts.Call, cancel);
            Interlocked.Add(ref bytesSent, 4L * count);
        }
        if (!complete)
        {
            throw new InvalidOperationException("the worker did not take the whole model");
        }
        lock (modelOf)
        {
            modelOf[info.Key] = sha;
        }
    }

    /// <summary>The reply and the rest of its upload as a result the server can take: anything inconsistent makes it a malformed upload.</summary>
    private async Task<ClientResult> Receive(WorkerInfo info, IFitWorker grain, FitReply reply, int id, CancellationToken cancel)
    {
        int expected = partition.Clients[id].Train.Length;
        if (reply.ClientId != id)
        {
            return Malformed(id, $"silo {info.Silo} answered for client {reply.ClientId}");
        }
        if (reply.UploadLength == 0)
        {
            return FailureOf(reply, id, info.Silo);
        }
        long limit = ClusterLimits.MaxUploadBytes(layout!);
        if (reply.UploadLength < 0 || reply.UploadLength > limit || reply.FirstChunk.Length > reply.UploadLength || reply.FirstChunk.Length == 0)
        {
            return Malformed(id, $"silo {info.Silo} announced an upload of {reply.UploadLength} bytes ({reply.FirstChunk.Length} sent; at most {limit} possible)");
        }
        var bytes = new byte[reply.UploadLength];
        reply.FirstChunk.CopyTo(bytes, 0);
        int have = reply.FirstChunk.Length;
        while (have < bytes.Length)
        {
            int count = Math.Min(ClusterLimits.ChunkBytes, bytes.Length - have);
            var chunk = await grain.ReadUpload(id, have, count).WaitAsync(timeouts.Call, cancel);
            if (chunk.Length != count)
            {
                throw new InvalidOperationException($"asked for {count} upload bytes, got {chunk.Length}");
            }
            chunk.CopyTo(bytes, have);
            have += count;
        }
        Interlocked.Add(ref bytesReceived, bytes.Length);
        WireUpload upload;
        try
        {
            upload = UploadCodec.Decode(bytes);
        }
        catch (MalformedUploadException e)
        {
            return Malformed(id, e.Message);
        }
        if (upload.ClientId != id || upload.ExampleCount != expected || reply.Examples != expected)
        {
            return Malformed(id, $"the upload claims client {upload.ClientId} with {upload.ExampleCount} examples; client {id} has {expected}");
        }
        if (!double.IsFinite(reply.TrainLoss) || !(reply.TrainFlops >= 0) || !(reply.DenseTrainFlops >= 0) || double.IsInfinity(reply.TrainFlops + reply.DenseTrainFlops))
        {
            return Malformed(id, $"silo {info.Silo} reported loss {reply.TrainLoss} and FLOPs {reply.TrainFlops} / {reply.DenseTrainFlops}");
        }
        return ClientResult.Succeeded(id, upload, expected, new FitMetrics(reply.TrainLoss, reply.TrainFlops, reply.DenseTrainFlops, Math.Max(0, reply.EncodeSeconds)));
    }

    /// <summary>
    /// The failure a reply without an upload reports for client <paramref name="id"/>: a worker may
    /// only report that training failed or gave a non-finite update (with no reason given: training
    /// failed, "no upload"); any other kind (a worker cannot lose itself, nor judge its own upload
    /// malformed) makes the reply a malformed upload.
    /// </summary>
    internal static ClientResult FailureOf(FitReply reply, int id, string silo)
    {
        var metrics = new FitMetrics(reply.TrainLoss, reply.TrainFlops, reply.DenseTrainFlops, reply.EncodeSeconds);
        if (reply.Failure is null)
        {
            return ClientResult.Failed(id, FailureKind.TrainingFailed, "no upload", reply.Examples, metrics);
        }
        var kind = (FailureKind)reply.FailureKind;
        return kind is FailureKind.TrainingFailed or FailureKind.NonFiniteUpdate
            ? ClientResult.Failed(id, kind, reply.Failure, reply.Examples, metrics)
            : Malformed(id, $"silo {silo} reported a failure of kind {reply.FailureKind} ({reply.Failure})");
    }

    private static ClientResult Malformed(int id, string detail) =>
        ClientResult.Failed(id, FailureKind.MalformedUpload, detail);

    /// <summary>The active silos' addresses and names.</summary>
    private Dictionary<string, string> ActiveSilos()
    {
        var hosts = client.GetGrain<IManagementGrain>(0).GetDetailedHosts(onlyActive: true).WaitAsync(timeouts.Call).GetAwaiter().GetResult();
        return hosts.Where(h => h.Status == SiloStatus.Active).ToDictionary(h => h.SiloAddress.ToParsableString(), h => h.SiloName);
    }

    /// <summary>Takes the active silos as the workers: configures the new ones (in parallel), drops the gone and the lost.</summary>
    private void Refresh(bool initial)
    {
        var active = ActiveSilos();
        var known = workers.Where(w => active.ContainsKey(w.Info.Key) && !IsLost(w.Info.Key)).ToList();
        var fresh = active.Keys.Where(k => !IsLost(k) && known.All(w => w.Info.Key != k)).ToList();
        var answers = fresh.Select(async key =>
        {
            var grain = client.GetGrain<IFitWorker>(key);
            try
            {
                var ready = await grain.Configure(configuration!).WaitAsync(timeouts.Configure);
                return (Key: key, Grain: grain, Ready: ready, Error: (string?)null);
            }
            catch (Exception e)
            {
                return (Key: key, Grain: grain, Ready: (WorkerReady?)null, Error: e is TimeoutException ? $"silo {active[key]}: not configured after {timeouts.Configure.TotalSeconds:F0} s" : $"silo {active[key]}: {ClusterException.OneLine(e)}");
            }
        }).ToArray();
        Task.WhenAll(answers).GetAwaiter().GetResult();
        foreach (var answer in answers.Select(a => a.Result))
        {
            string? problem = answer.Error ?? answer.Ready!.Problem;
            if (problem is not null)
            {
                if (initial)
                {
                    throw new ClusterException(problem);
                }
                warn($"{problem}; the silo is left out");
                lock (lost)
                {
                    lost.Add(answer.Key);
                }
                continue;
            }
            var info = new WorkerInfo(answer.Key, answer.Ready!.Silo, answer.Ready.Device);
            served[answer.Key] = info;
            known.Add((info, answer.Grain));
        }
        workers = [.. known.OrderBy(w => w.Info.Key, StringComparer.Ordinal)];
    }

    private bool IsLost(string key)
    {
        lock (lost)
        {
            return lost.Contains(key);
        }
    }
}
