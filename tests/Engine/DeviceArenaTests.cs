using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Memory;
using ZeroFL.Tests.Support;

namespace ZeroFL.Tests.Engine;

/// <summary>The step arena: views that do not overlap, reuse after a free, peak accounting, and chunk merging that stops reallocating.</summary>
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

    [Test]
    public void AFreedViewIsReusedAndThePeakStaysPut()
    {
        using var arena = new DeviceArena<float>(Device, 4096);
        var a = arena.Allocate(1000);
        var b = arena.Allocate(1000);
        long peak = arena.Peak;
        arena.Free(a);
        Assert.That(arena.Used, Is.EqualTo(1024), "only b is live");
        var c = arena.Allocate(900);
        Assert.That(c.LoadEffectiveAddressAsPtr(), Is.EqualTo(a.LoadEffectiveAddressAsPtr()), "c takes a's place");
        Assert.That(arena.Peak, Is.EqualTo(peak), "no memory beyond the two first views");
        arena.Free(b);
        arena.Free(c);
        Assert.That(arena.LiveViews, Is.Zero);
        var whole = arena.Allocate(3000);
        Assert.That(whole.LoadEffectiveAddressAsPtr(), Is.EqualTo(a.LoadEffectiveAddressAsPtr()), "freed neighbours merged into one block");
        Assert.That(arena.Peak, Is.EqualTo(3008));
    }

    [Test]
    public void HolesAreFilledBeforeTheTop()
    {
        using var arena = new DeviceArena<float>(Device, 1 << 16);
        var low = arena.Allocate(8192);
        arena.Allocate(64);
        arena.Allocate(1024);
        arena.Free(low);
        // A best fit by size would take the untouched top (smaller than the hole) and raise the peak.
        long peak = arena.Peak;
        arena.Allocate(4096);
        arena.Allocate(4096);
        Assert.That(arena.Peak, Is.EqualTo(peak), "both went into the hole");
    }

    [Test]
    public void FreeingTwiceOrAForeignViewThrows()
    {
        using var arena = new DeviceArena<float>(Device, 1024);
        var a = arena.Allocate(10);
        arena.Free(a);
        Assert.Throws<InvalidOperationException>(() => arena.Free(a));
        using var other = Device.Accelerator.Allocate1D<float>(16);
        Assert.Throws<InvalidOperationException>(() => arena.Free(other.View));
    }

    [Test]
    public void LiveViewsNeverOverlapUnderRandomAllocationsAndFrees()
    {
        using var arena = new DeviceArena<float>(Device, 2048);
        var random = new Random(5);
        var live = new List<(ArrayView<float> View, float Value)>();
        long maxUsed = 0;
        for (int step = 0; step < 3; step++)
        {
            for (int i = 0; i < 120; i++)
            {
                if (live.Count > 0 && random.Next(3) == 0)
                {
                    int victim = random.Next(live.Count);
                    arena.Free(live[victim].View);
                    live.RemoveAt(victim);
                }
                else
                {
                    var view = arena.Allocate(random.Next(1, 700));
                    float value = step * 1000 + i;
                    view.CopyFromCPU(Enumerable.Repeat(value, (int)view.Length).ToArray());
                    live.Add((view, value));
                }
                maxUsed = Math.Max(maxUsed, arena.Used);
                Assert.That(arena.Peak, Is.GreaterThanOrEqualTo(arena.Used), "the peak covers what is live");
            }
            foreach (var (view, value) in live)
            {
                Assert.That(Download(view), Is.All.EqualTo(value), "no live view was overwritten by a later one");
            }
            live.Clear();
            arena.Reset();
            Assert.That(arena.LiveViews, Is.Zero);
        }
        Assert.That(arena.Capacity, Is.LessThanOrEqualTo(2 * (maxUsed + maxUsed / DeviceArena<float>.Headroom)), "merged near the live peak");
    }
}
