using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Memory;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Engine;

/// <summary>The step arena: views that do not overlap, and chunk merging that stops reallocating.</summary>
[TestFixtureSource(typeof(TestDevices), nameof(TestDevices.Specs))]
public sealed class DeviceArenaTests(string device) : DeviceTest(device)
{
    [Test]
    public void OverflowMergesIntoOneChunkWithHeadroomThatSmallGrowthFits()
    {
        using var arena = new DeviceArena<float>(Device, 1024);
        arena.Allocate(1000);
        arena.Allocate(3000);
        Assert.That(arena.Capacity, Is.GreaterThan(1024), "the overflow took a second chunk");
        long peak = arena.Peak;
        arena.Reset();
        Assert.That(arena.Capacity, Is.EqualTo(peak + peak / DeviceArena<float>.Headroom), "merged to the peak plus headroom");

        // The next step needs a little more (as a reused top-K threshold keeps a different count): it fits.
        long capacity = arena.Capacity;
        arena.Allocate(1100);
        arena.Allocate(3000);
        Assert.That(arena.Used, Is.GreaterThan(peak));
        arena.Reset();
        Assert.That(arena.Capacity, Is.EqualTo(capacity), "no new buffer for a step slightly above the old peak");
    }

    [Test]
    public void ViewsOfOneStepDoNotOverlapAcrossChunks()
    {
        using var arena = new DeviceArena<float>(Device, 256);
        var views = Enumerable.Range(1, 6).Select(i => arena.Allocate(100 * i)).ToList();
        for (int i = 0; i < views.Count; i++)
        {
            var fill = Enumerable.Repeat((float)(i + 1), (int)views[i].Length).ToArray();
            views[i].CopyFromCPU(fill);
        }
        for (int i = 0; i < views.Count; i++)
        {
            Assert.That(Download(views[i]), Is.All.EqualTo(i + 1), $"view {i} kept its values after the later writes");
        }
    }
}
