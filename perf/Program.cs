using ZeroFL.Engine.Devices;
using ZeroFL.Kernels;
using ZeroFL.Perf;

// ZeroFL.Perf: kernel benchmarks against OpenBLAS, SWAT targets, bandwidth, training steps against PyTorch. See perf/README.md.
// usage: dotnet run -c Release --project perf -- [gemm|conv|all|sparse|sparse-passes|topk|topk-passes|swat|memory|federation|bandwidth|torch] [--device cpu] [--quick] [--density D]
string suite = "all";
string deviceText = "cpu";
bool quick = false;
double passDensity = 0.1;
const string usage = "ZeroFL.Perf [gemm|conv|all|sparse|sparse-passes|topk|topk-passes|swat|memory|federation|bandwidth|torch] [--device auto|cpu|cuda|opencl[:index]] [--quick] [--density D (sparse-passes, 0 < D <= 1, default 0.1)]";
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "gemm" or "conv" or "all" or "sparse" or "sparse-passes" or "topk" or "topk-passes" or "swat" or "memory" or "federation" or "bandwidth" or "torch":
            suite = args[i];
            break;
        case "--device" when i + 1 < args.Length:
            deviceText = args[++i];
            break;
        case "--quick":
            quick = true;
            break;
        case "--density" when i + 1 < args.Length:
            if (!double.TryParse(args[++i], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out passDensity)
                || !(passDensity > 0 && passDensity <= 1))
            {
                Console.Error.WriteLine($"--density must be a number in (0, 1], got '{args[i]}'");
                return 64;
            }
            break;
        case "-h" or "--help":
            Console.WriteLine($"usage: {usage}");
            return 0;
        default:
            Console.Error.WriteLine($"unknown argument '{args[i]}' (usage: {usage})");
            return 64;
    }
}

try
{
    if (suite is "federation")
    {
        using var fedDevice = ComputeDevice.Open(DeviceSpec.Parse(deviceText), Console.Error);
        var data = ZeroFL.Data.IdxDataset.Load("fashion-mnist", null);
        var bench = new FederationBench(fedDevice, quick);
        bench.RoundCost(data);
        bench.Memory(data);
        return 0;
    }
    if (suite is "torch")
    {
        using var torchDevice = ComputeDevice.Open(DeviceSpec.Parse(deviceText), Console.Error);
        Console.Error.WriteLine($"# device {torchDevice.Description}; peer PyTorch ({TorchPeer.Python}); {(quick ? "quick" : "full")} run");
        new TorchBench(torchDevice, quick).Run();
        return 0;
    }
    if (suite is "topk-passes")
    {
        using var passDevice = ComputeDevice.Open(DeviceSpec.Parse(deviceText), Console.Error);
        Console.Error.WriteLine($"# device {passDevice.Description}; {(quick ? "quick" : "full")} run");
        var bench = new TopKPassesBench(passDevice, quick);
        foreach (var (name, cin, size, cout, _) in TopKPassesBench.ResNet18Layers())
        {
            bench.Layer(name, 32, cin, size, size, cout, 3, (float)passDensity);
        }
        // FEMNIST CNN's sparse layers at batch 32: conv2 (5x5, 32 -> 64 on 14x14) and fc1 (3136 -> 2048, a 1x1 "conv" on 1x1).
        bench.Layer("femnist_conv2", 32, 32, 14, 14, 64, 5, (float)passDensity);
        bench.Layer("femnist_fc1", 32, 3136, 1, 1, 2048, 1, (float)passDensity);
        return 0;
    }
    if (suite is "topk" or "swat" or "memory")
    {
        using var swatDevice = ComputeDevice.Open(DeviceSpec.Parse(deviceText), Console.Error);
        Console.Error.WriteLine($"# device {swatDevice.Description}; {(quick ? "quick" : "full")} run");
        var bench = new SwatBench(swatDevice, quick);
        if (suite is "topk")
        {
            bench.TopK();
        }
        else if (suite is "memory")
        {
            bench.PeakMemory(0.9f);
        }
        else
        {
            bench.Steps([0.9f, 0.95f]);
            bench.PeakMemory(0.9f);
        }
        return 0;
    }
    if (suite is "bandwidth")
    {
        using var bandwidthDevice = ComputeDevice.Open(DeviceSpec.Parse(deviceText), Console.Error);
        Console.Error.WriteLine($"# device {bandwidthDevice.Description}; {(quick ? "quick" : "full")} run");
        var bench = new BandwidthBench(bandwidthDevice, quick);
        bench.ElementwisePasses(bench.Stream());
        return 0;
    }
    if (suite is "sparse-passes")
    {
        using var passDevice = ComputeDevice.Open(DeviceSpec.Parse(deviceText), Console.Error);
        Console.Error.WriteLine($"# device {passDevice.Description}; {(quick ? "quick" : "full")} run");
        var sparse = new SparseConvBench(passDevice, quick);
        foreach (var (layer, g) in ResNet18Convs().Concat(ResNet18Downsampling()))
        {
            sparse.SparseOnly(layer, g, passDensity);
        }
        return 0;
    }
    string blas = OpenBlas.Initialise(Environment.ProcessorCount);
    using var device = ComputeDevice.Open(DeviceSpec.Parse(deviceText), Console.Error);
    Console.Error.WriteLine($"# device {device.Description}; reference {blas}; {(quick ? "quick" : "full")} run");
    var harness = new Harness(device, quick);
    if (suite is "gemm" or "all")
    {
        harness.Gemm(512, 512, 512);
        foreach (var (_, g) in ResNet18Convs())
        {
            harness.Gemm(g.GemmM, (int)g.GemmN, g.GemmK);
        }
    }
    if (suite is "conv" or "all")
    {
        foreach (var (layer, g) in ResNet18Convs())
        {
            harness.Conv(layer, g);
        }
    }
    if (suite is "sparse")
    {
        var sparse = new SparseConvBench(device, quick);
        foreach (double density in new[] { 0.1, 0.05 })
        {
            foreach (var (layer, g) in ResNet18Convs().Concat(FemnistSparseLayers()))
            {
                sparse.Layer(layer, g, density);
            }
        }
        foreach (var (layer, g) in ResNet18Convs().Concat(FemnistSparseLayers()))
        {
            sparse.Crossover(layer, g, [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7]);
        }
    }
    return 0;
}
catch (ValidationException e)
{
    Console.Error.WriteLine($"VALIDATION FAILED, benchmark aborted: {e.Message}");
    return 2;
}
catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or ZeroFL.Data.DataNotFoundException or ZeroFL.Data.DataFormatException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

// The distinct 3x3 convolutions of ResNet-18 on 32x32 CIFAR input at batch 32 (im2col GEMM
// M = Cout, K = Cin*9, N = 32*Ho*Wo): 64x576x32768, 128x1152x8192, 128x576x8192 (stride 2),
// 256x2304x2048, 512x4608x512.
// The sparse layers of the LEAF FEMNIST CNN besides conv1 (1 input channel): conv2 (5x5, 32 -> 64 on
// 14x14) and fc1 (3136 -> 2048, a linear layer = a 1x1 convolution on 1x1 images) at batch 20 and 64.
static IEnumerable<(string Layer, ConvGeometry Geometry)> FemnistSparseLayers()
{
    yield return ("femnist_conv2", new ConvGeometry(32, 32, 14, 14, 64, 5, 5, 1, 2));
    yield return ("femnist_fc1", new ConvGeometry(20, 3136, 1, 1, 2048, 1, 1, 1, 0));
    yield return ("femnist_fc1", new ConvGeometry(64, 3136, 1, 1, 2048, 1, 1, 1, 0));
}

static IEnumerable<(string Layer, ConvGeometry Geometry)> ResNet18Convs()
{
    const int batch = 32;
    yield return ("layer1", new ConvGeometry(batch, 64, 32, 32, 64, 3, 3, 1, 1));
    yield return ("layer2", new ConvGeometry(batch, 128, 16, 16, 128, 3, 3, 1, 1));
    yield return ("layer2_down", new ConvGeometry(batch, 64, 32, 32, 128, 3, 3, 2, 1));
    yield return ("layer3", new ConvGeometry(batch, 256, 8, 8, 256, 3, 3, 1, 1));
    yield return ("layer4", new ConvGeometry(batch, 512, 4, 4, 512, 3, 3, 1, 1));
}

// The other two stride-2 3x3 convolutions of ResNet-18 (sparse under SWAT; sparse-passes only).
static IEnumerable<(string Layer, ConvGeometry Geometry)> ResNet18Downsampling()
{
    const int batch = 32;
    yield return ("layer3_down", new ConvGeometry(batch, 128, 16, 16, 256, 3, 3, 2, 1));
    yield return ("layer4_down", new ConvGeometry(batch, 256, 8, 8, 512, 3, 3, 2, 1));
}
